// Password-protected links: the stored hash (scrypt, a salt per link) and the short-lived cookie a
// visitor gets once they gave the right password. The cookie names the link and the password's
// hash it was earned with, so changing or removing the password ends every cookie at once.
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

// scrypt's cost: N=2^14, r=8 (16 MiB, about 40 ms of one core here): dear for a guesser with a
// stolen hash, bearable per attempt (attempts are rate limited per client and link).
const N = 16384;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
/** How long a right password keeps opening a link in that browser. */
export const UNLOCK_TTL_MS = 3_600_000;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize('NFC'),
      salt,
      KEY_BYTES,
      { N: n, r, p, maxmem: 64 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

/** `scrypt$N$r$p$salt$key` (base64url): the parameters travel with the hash, so they can change. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Whether the password is the one hashed; the comparison takes the same time whatever differs. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4]!, 'base64url');
  const want = Buffer.from(parts[5]!, 'base64url');
  const got = await derive(password, salt, n, r, p);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The cookie a link's right password earns: `hop_pw_<code>`, valid for UNLOCK_TTL_MS. */
export class UnlockCookies {
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    // A key of its own, so a link cookie can never pass for a session or the other way round.
    this.key = createHmac('sha256', secret).update('hop link unlock v1').digest();
  }

  static nameFor(code: string): string {
    return `hop_pw_${code}`;
  }

  private mac(code: string, hash: string, until: number): string {
    return createHmac('sha256', this.key).update(`${code}\u0000${until}\u0000${hash}`).digest('base64url');
  }

  /** The Set-Cookie header for a visitor who gave `code`'s password (path-scoped to the link). */
  issue(code: string, hash: string, now: number, secure: boolean): string {
    const until = now + UNLOCK_TTL_MS;
    const value = `${until}.${this.mac(code, hash, until)}`;
    return `${UnlockCookies.nameFor(code)}=${value}; Path=/${code}; Max-Age=${UNLOCK_TTL_MS / 1000}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
  }

  /** Whether a cookie value still opens the link (its password unchanged, not expired). */
  valid(code: string, hash: string, value: string | null, now: number): boolean {
    if (value === null) return false;
    const dot = value.indexOf('.');
    const until = Number(value.slice(0, dot));
    if (dot === -1 || !Number.isSafeInteger(until) || until <= now) return false;
    const given = Buffer.from(value.slice(dot + 1));
    const want = Buffer.from(this.mac(code, hash, until));
    return given.length === want.length && timingSafeEqual(given, want);
  }
}
