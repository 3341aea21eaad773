// Byte classes of HTTP/1.1 (RFC 9110 5.6.2, RFC 9112), as the strict llhttp Node ships applies
// them: one lookup table each, so a check is one array read per byte.

function table(accept: (byte: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = accept(b) ? 1 : 0;
  return t;
}

const TCHAR_SYMBOLS = "!#$%&'*+-.^_`|~";

/** tchar: a header name, a method, a chunk extension name. */
export const TOKEN = table((b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || TCHAR_SYMBOLS.includes(String.fromCharCode(b)));

/** A request target byte: visible ASCII (llhttp refuses HTAB, DEL, controls and bytes >= 0x80). */
export const TARGET = table((b) => b > 0x20 && b < 0x7f);

/** A field value byte: HTAB, SP, visible ASCII, obs-text (0x80-0xFF); no controls, no DEL. */
export const FIELD_VALUE = table((b) => b === 0x09 || (b >= 0x20 && b !== 0x7f));

/** A reason phrase byte: llhttp lets any byte but CR and LF through. */
export const REASON = table((b) => b !== 0x0d && b !== 0x0a);

/** A hexadecimal digit's value, or -1. */
export const HEX = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let d = 0; d < 10; d++) t[0x30 + d] = d;
  for (let d = 0; d < 6; d++) {
    t[0x41 + d] = 10 + d;
    t[0x61 + d] = 10 + d;
  }
  return t;
})();

/** A quoted-string byte inside the quotes (qdtext; a backslash starts a quoted-pair). */
export const QDTEXT = table((b) => b === 0x09 || b === 0x20 || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || b >= 0x80);

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
