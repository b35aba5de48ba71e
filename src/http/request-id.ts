// Request ids: the caller's X-Request-Id when it is sane, else a cheap per-process counter.
// The raw redirect path and Fastify share it, so ids look the same everywhere.

let counter = 0;
const bootId = Math.floor(Math.random() * 36 ** 4).toString(36);
const GIVEN = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFor(given: string | string[] | undefined): string {
  return typeof given === 'string' && GIVEN.test(given) ? given : `${bootId}-${(++counter).toString(36)}`;
}
