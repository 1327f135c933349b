import { lookup as osLookup, Resolver } from 'node:dns';
import type { IpVersion } from '@wsmon/contracts';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * Resolves a host name. The engine aborts `signal` when it stops waiting (deadline reached);
 * implementations then release everything they hold. Errors carry Node's DNS error codes.
 */
export type HostLookup = (
  host: string,
  ipVersion: IpVersion,
  signal: AbortSignal,
) => Promise<ResolvedAddress>;

const FAMILY: Record<IpVersion, 0 | 4 | 6> = { any: 0, ipv4: 4, ipv6: 6 };

/** The operating system's resolver (hosts file, then DNS), as browsers and most clients use. */
export const systemLookup: HostLookup = (host, ipVersion) =>
  new Promise((resolve, reject) => {
    // getaddrinfo cannot be cancelled; the engine ignores an answer that comes too late.
    osLookup(host, { family: FAMILY[ipVersion] }, (error, address, family) => {
      if (error) reject(error);
      else resolve({ address, family: family === 6 ? 6 : 4 });
    });
  });

/**
 * Resolves through the given DNS servers (`ip` or `ip:port`) instead of the system's, as an
 * agent inside a private network may need. Each lookup has its own resolver so a deadline can
 * cancel exactly its own queries.
 */
export function dnsServerLookup(servers: readonly string[]): HostLookup {
  return (host, ipVersion, signal) => {
    // One try: the engine's deadline, not c-ares' retry schedule, bounds the lookup.
    const resolver = new Resolver({ tries: 1 });
    resolver.setServers([...servers]);
    const resolveFamily = (family: 4 | 6) =>
      new Promise<ResolvedAddress>((resolve, reject) => {
        const done = (error: NodeJS.ErrnoException | null, addresses: string[]) => {
          const address = addresses?.[0];
          if (error) reject(error);
          else if (!address)
            reject(Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' }));
          else resolve({ address, family });
        };
        if (family === 4) resolver.resolve4(host, done);
        else resolver.resolve6(host, done);
      });
    const attempt =
      ipVersion === 'ipv4'
        ? resolveFamily(4)
        : ipVersion === 'ipv6'
          ? resolveFamily(6)
          : resolveFamily(4).catch(() => resolveFamily(6));
    const cancel = () => resolver.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    return attempt.finally(() => signal.removeEventListener('abort', cancel));
  };
}
