import { badRequest } from "@snapmesh/runtime";

// C0/C1 control characters except newline and tab, plus bidi overrides and zero-width joiners used for spoofing.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/g;

/** NFC, control characters stripped, runs of blank lines folded, trimmed; then the length rule. */
export function normaliseComment(raw: string, maxChars: number): string {
  const text = raw
    .normalize("NFC")
    .replace(CONTROL, "")
    .replace(/\r\n?/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
  const length = [...text].length;
  if (length === 0) throw badRequest("invalid_text", "the comment is empty after normalisation");
  if (length > maxChars)
    throw badRequest("invalid_text", `the comment has ${length} characters; at most ${maxChars}`, { maxChars });
  return text;
}
