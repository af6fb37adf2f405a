/**
 * The server_name of a TLS ClientHello in its first record, for the baseline SNI relay.
 * Returns undefined while more bytes are needed, null when there is no SNI or the bytes are not a
 * ClientHello, else the (lower-cased) host name.
 */
const RECORD_HEADER = 5;
const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;

export function clientHelloSni(buf: Buffer): string | null | undefined {
  if (buf.length < RECORD_HEADER) return undefined;
  if (buf[0] !== HANDSHAKE) return null;
  const recordEnd = RECORD_HEADER + buf.readUInt16BE(3);
  if (buf.length < recordEnd) return undefined;
  let p = RECORD_HEADER;
  if (buf[p] !== CLIENT_HELLO) return null;
  p += 4 + 2 + 32; // handshake header, client_version, random
  const need = (n: number): boolean => p + n <= recordEnd;
  if (!need(1)) return null;
  p += 1 + (buf[p] ?? 0); // session_id
  if (!need(2)) return null;
  p += 2 + buf.readUInt16BE(p); // cipher_suites
  if (!need(1)) return null;
  p += 1 + (buf[p] ?? 0); // compression_methods
  if (!need(2)) return null;
  const extEnd = Math.min(recordEnd, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 2);
    p += 4;
    if (type === EXT_SERVER_NAME && p + 5 <= extEnd && buf[p + 2] === NAME_TYPE_HOST) {
      const nameLen = buf.readUInt16BE(p + 3);
      if (p + 5 + nameLen > extEnd) return null;
      return buf.toString('latin1', p + 5, p + 5 + nameLen).toLowerCase();
    }
    p += len;
  }
  return null;
}
