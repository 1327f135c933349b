import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretCipher } from './secret-cipher';

describe(SecretCipher.name, () => {
  const cipher = new SecretCipher(randomBytes(32));

  it('opens what it sealed, and seals the same value differently each time', () => {
    const first = cipher.seal('TOKEN', 'value-1');
    expect(cipher.open('TOKEN', first)).toBe('value-1');
    expect(cipher.seal('TOKEN', 'value-1').equals(first)).toBe(false);
    expect(first.includes(Buffer.from('value-1'))).toBe(false);
  });

  it('refuses a sealed value copied onto another name, or tampered with, or under another key', () => {
    const sealed = cipher.seal('TOKEN', 'value-1');
    expect(() => cipher.open('OTHER', sealed)).toThrow();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => cipher.open('TOKEN', tampered)).toThrow();
    expect(() => new SecretCipher(randomBytes(32)).open('TOKEN', sealed)).toThrow();
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretCipher(randomBytes(16))).toThrow('32 bytes');
  });
});
