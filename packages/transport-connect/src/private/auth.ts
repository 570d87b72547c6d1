import { createHash, timingSafeEqual } from "node:crypto";

/**
 * A constant-time check of the shared secret. Both sides are hashed first so the
 * comparison always runs over two equal-length digests: timingSafeEqual needs equal
 * lengths, and comparing raw strings would leak the secret's length.
 */
export function makeSecretCheck(
  secret: string,
): (got: string | string[] | null | undefined) => boolean {
  const expected = createHash("sha256").update(secret, "utf8").digest();
  return (got) => {
    if (typeof got !== "string") return false; // missing, or sent twice
    const digest = createHash("sha256").update(got, "utf8").digest();
    return timingSafeEqual(digest, expected);
  };
}
