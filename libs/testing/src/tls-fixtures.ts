import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateRsaKeyPair = promisify(generateKeyPair);

const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM encoded. */
export interface CertAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Every certificate the target zoo serves, plus the CA that signs three of them. */
export interface ZooTlsMaterial {
  /** The test CA (cA=true, keyCertSign); trust it to make `valid` verify. */
  readonly ca: CertAndKey;
  /** Signed by the CA for DNS:localhost and IP:127.0.0.1, valid from now-1 day to now+90 days. */
  readonly valid: CertAndKey;
  /** Self-signed for DNS:localhost and IP:127.0.0.1, valid from now-1 day to now+90 days. */
  readonly selfSigned: CertAndKey;
  /** Signed by the CA for DNS:localhost and IP:127.0.0.1, valid from now-30 days to now-1 day. */
  readonly expired: CertAndKey;
  /** Signed by the CA, valid dates, but only for DNS:wrong-host.example. */
  readonly wrongHost: CertAndKey;
  /** Signed by the CA for localhost and 127.0.0.1, but valid only from now+30 days (a clock or rollout mistake). */
  readonly notYetValid: CertAndKey;
}

interface KeyPair {
  readonly privateKey: forge.pki.rsa.PrivateKey;
  readonly publicKey: forge.pki.rsa.PublicKey;
  readonly keyPem: string;
}

interface LeafSpec {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

let cachedMaterial: Promise<ZooTlsMaterial> | undefined;

/**
 * Returns the zoo's TLS material, generating it on first use.
 *
 * Generated once per process: RSA key generation and signing take a few hundred milliseconds, and a test
 * process may start many zoos. Validity windows are relative to the time of that first call.
 */
export function getZooTlsMaterial(): Promise<ZooTlsMaterial> {
  cachedMaterial ??= generateZooTlsMaterial().catch((error: unknown) => {
    // Don't cache a failure: the next zoo gets a fresh attempt.
    cachedMaterial = undefined;
    throw error;
  });
  return cachedMaterial;
}

async function generateZooTlsMaterial(): Promise<ZooTlsMaterial> {
  // Node's native keygen runs on the libuv pool, in parallel; forge's pure-JS keygen takes seconds.
  const [caKeys, validKeys, selfSignedKeys, expiredKeys, wrongHostKeys, notYetValidKeys] = await Promise.all(
    Array.from({ length: 6 }, () => generateRsaKeys()),
  );
  // Keeps TypeScript's noUncheckedIndexedAccess satisfied without non-null assertions.
  if (!caKeys || !validKeys || !selfSignedKeys || !expiredKeys || !wrongHostKeys || !notYetValidKeys) {
    throw new Error('RSA key generation returned too few keys');
  }

  const now = Date.now();
  const current = { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 90 * DAY_MS) };
  const local = { commonName: 'localhost', dnsNames: ['localhost'], ips: ['127.0.0.1'] };

  const caCert = createCaCertificate(caKeys, new Date(now - 60 * DAY_MS), new Date(now + 365 * DAY_MS));
  const issuer = { cert: caCert, keys: caKeys };

  return {
    ca: { certPem: forge.pki.certificateToPem(caCert), keyPem: caKeys.keyPem },
    valid: createLeaf(validKeys, { ...local, ...current }, issuer),
    selfSigned: createLeaf(selfSignedKeys, { ...local, ...current }, undefined),
    expired: createLeaf(
      expiredKeys,
      { ...local, notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) },
      issuer,
    ),
    notYetValid: createLeaf(
      notYetValidKeys,
      { ...local, notBefore: new Date(now + 30 * DAY_MS), notAfter: new Date(now + 120 * DAY_MS) },
      issuer,
    ),
    wrongHost: createLeaf(
      wrongHostKeys,
      { commonName: 'wrong-host.example', dnsNames: ['wrong-host.example'], ips: [], ...current },
      issuer,
    ),
  };
}

async function generateRsaKeys(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateRsaKeyPair('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    keyPem: privateKey,
  };
}

/** A positive, random, 16-byte serial, as RFC 5280 asks (forge takes it as hex). */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  // Clearing the top bit keeps the DER INTEGER positive; setting the next one keeps it 16 bytes long.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function createCaCertificate(keys: KeyPair, notBefore: Date, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const name = [
    { name: 'commonName', value: 'wsmon target zoo test CA' },
    { name: 'organizationName', value: 'wsmon tests' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return cert;
}

/** Issues a server certificate; without an issuer it is self-signed. */
function createLeaf(
  keys: KeyPair,
  spec: LeafSpec,
  issuer: { readonly cert: forge.pki.Certificate; readonly keys: KeyPair } | undefined,
): CertAndKey {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  cert.setSubject([
    { name: 'commonName', value: spec.commonName },
    { name: 'organizationName', value: 'wsmon tests' },
  ]);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : cert.subject.attributes);
  cert.setExtensions([
    // A self-signed certificate must be allowed to sign itself, or OpenSSL won't accept it as its own
    // trust anchor when a client pins it; that is also what `openssl req -x509` produces.
    issuer
      ? { name: 'basicConstraints', cA: false, critical: true }
      : { name: 'basicConstraints', cA: true, critical: true },
    {
      name: 'keyUsage',
      digitalSignature: true,
      keyEncipherment: true,
      keyCertSign: !issuer,
      critical: true,
    },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...spec.dnsNames.map((value) => ({ type: 2, value })),
        ...spec.ips.map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: issuer ? issuer.cert.generateSubjectKeyIdentifier().getBytes() : true,
    },
  ]);
  cert.sign((issuer ?? { keys }).keys.privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}
