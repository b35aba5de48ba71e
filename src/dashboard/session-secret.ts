// Where the session-signing secret comes from: HOP_SESSION_SECRET, else a random one generated
// once and kept beside the embedded database (so restarts keep people signed in), else (in
// memory) a random one per process.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { Sessions } from '../http/sessions.ts';

const FILE = 'session-secret';

// One secret per configuration: in memory, the sessions and the link unlock cookies of one
// process must agree on it.
const inMemory = new WeakMap<Config, Buffer>();

export function sessionSecret(config: Config): Buffer {
  if (config.sessionSecret !== null) return Buffer.from(config.sessionSecret, 'utf8');
  if (config.dataDir === null) {
    let secret = inMemory.get(config);
    if (secret === undefined) {
      secret = randomBytes(32);
      inMemory.set(config, secret);
    }
    return secret;
  }
  const path = join(config.dataDir, FILE);
  mkdirSync(config.dataDir, { recursive: true });
  try {
    // 'wx': never overwrite a secret another process wrote first.
    writeFileSync(path, randomBytes(32).toString('base64url'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = readFileSync(path, 'utf8').trim();
  if (text.length < 32)
    throw new Error(`${path} holds no usable session secret; delete it to make a new one.`);
  return Buffer.from(text, 'utf8');
}

export function createSessions(config: Config): Sessions {
  return new Sessions(sessionSecret(config), config.sessionTtlMs);
}
