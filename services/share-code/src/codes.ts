import { randomInt } from "node:crypto";

/** No 0/O, 1/I/L: nothing a person can misread from a printed code. */
export const ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const CODE_LENGTH = 10; // 31^10 ≈ 8·10^14 codes; WeChat's `scene` allows 32 characters

/** A code from a cryptographic random source, uniform over the alphabet (randomInt rejects biased draws). */
export function newCode(): string {
  let code = "";
  for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

/** What a person typed or a scanner read: case and spaces forgiven. */
export function normaliseCode(input: string): string {
  return input.replace(/[\s-]/g, "").toUpperCase();
}

export const isCode = (s: string) => s.length === CODE_LENGTH && [...s].every((c) => ALPHABET.includes(c));

/** Where a code's QR image lives in storage; facts about other objects are not share-code's. */
export const IMAGE_PREFIX = "sharecodes/";
export const imageKeyOf = (code: string) => `${IMAGE_PREFIX}${code}.png`;
