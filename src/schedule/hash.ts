/**
 * Stable hashing for `H` fields and per-object jitter. The values must never change between
 * releases or processes (a schedule that moves on upgrade is a surprise), so this is a fixed,
 * documented function: FNV-1a over the UTF-16 code units, then murmur3's fmix32 finaliser so that
 * keys differing in one character land far apart.
 */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A stable fraction in [0, 1) derived from `text`. */
export function hashFraction(text: string): number {
  return hash32(text) / 0x1_0000_0000;
}
