/** Content types recognised from their first bytes. */
const SIGNATURES: Array<{ type: string; test: (b: Buffer) => boolean }> = [
  { type: "image/jpeg", test: (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: "image/png", test: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { type: "image/gif", test: (b) => ["GIF87a", "GIF89a"].includes(b.subarray(0, 6).toString("latin1")) },
  {
    type: "image/webp",
    test: (b) => b.subarray(0, 4).toString("latin1") === "RIFF" && b.subarray(8, 12).toString("latin1") === "WEBP",
  },
  {
    type: "image/heic",
    test: (b) =>
      b.subarray(4, 8).toString("latin1") === "ftyp" && /^(heic|heix|mif1|msf1)$/.test(b.subarray(8, 12).toString("latin1")),
  },
];

/** Bytes needed to recognise any supported type. */
export const MAGIC_BYTES = 16;

export function sniff(head: Buffer): string | undefined {
  return SIGNATURES.find((s) => s.test(head))?.type;
}
