// A source link whose code Hop already has with another mapping: kept out and reported (keep), or
// imported under a code drawn as Hop draws its own (regenerate), the old → new mapping reported.
import { bucketOf } from '../domain/bucket.ts';
import { generateCode } from '../domain/codes.ts';
import type { Link } from '../domain/link.ts';
import type { LinkStore } from '../storage/ports.ts';
import { SourceError } from './source.ts';

export type ClashPolicy = 'keep' | 'regenerate';
export const CLASH_POLICIES: readonly ClashPolicy[] = ['keep', 'regenerate'];

// A draw meets a taken code about 0.03% of the time at a billion links (DESIGN §3): a few suffice.
const DRAWS = 8;

/** The link imported under a freshly drawn code. */
export async function regenerate(
  store: Pick<LinkStore, 'importLinks'>,
  link: Link,
  codeLength: number,
): Promise<Link> {
  for (let i = 0; i < DRAWS; i++) {
    const code = generateCode(codeLength);
    const fresh: Link = { ...link, code, bucket: bucketOf(code) };
    const [status] = await store.importLinks([fresh]);
    if (status === 'created') return fresh;
  }
  throw new SourceError(`no free code found for ${link.code} in ${DRAWS} draws`);
}
