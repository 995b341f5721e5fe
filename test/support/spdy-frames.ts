// SPDY/3 framing (the SPDY Protocol Draft 3, as moby/spdystream speaks it for Kubernetes' streams):
// control and DATA frames, name/value header blocks, and their zlib compression with the SPDY
// dictionary, one zlib context per direction of a session.
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';

/**
 * The SPDY/3 header compression dictionary, from the SPDY Protocol Draft 3 (section 2.6.10.1,
 * "Compression"): length-prefixed header names and values, then a run of common value text.
 */
const SPDY_DICTIONARY: Buffer = (() => {
  const words = [
    'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow',
    'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5',
    'content-range', 'content-type', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
    'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after',
    'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK',
    'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
  ];
  const tail =
    '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
    '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found' +
    '500 Internal Server Error501 Not Implemented503 Service Unavailable' +
    'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
    'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,public' +
    'privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
  return Buffer.concat([...words.map((word) => lengthPrefixed(Buffer.from(word, 'latin1'))), Buffer.from(tail, 'latin1')]);
})();

const SPDY_VERSION = 3;
/** SPDY/3 control frame types. */
export const FRAME = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goAway: 7, headers: 8, windowUpdate: 9 } as const;
export const FLAG_FIN = 0x01;
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

function lengthPrefixed(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** One zlib context for a direction of the session: each header block is a sync-flushed piece of it. */
function zlibBlocks(stream: Inflate | Deflate): (block: Buffer) => Promise<Buffer> {
  let failure: Error | undefined;
  stream.on('error', (error: Error) => {
    failure = error;
  });
  return (block) =>
    new Promise((resolve, reject) => {
      if (failure) {
        reject(failure);
        return;
      }
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk);
      };
      stream.on('data', onData);
      stream.write(block);
      stream.flush(constants.Z_SYNC_FLUSH, () => {
        stream.off('data', onData);
        if (failure) reject(failure);
        else resolve(Buffer.concat(chunks));
      });
    });
}

/** A control frame: version 3 with the control bit, its type, flags and 24-bit length, then the payload. */
export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  header.writeUInt16BE(type, 2);
  header.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** A DATA frame: the stream id (control bit clear), flags (FIN) and 24-bit length, then the data. */
export function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(streamId & 0x7fffffff, 0);
  header.writeUInt32BE(((flags & 0xff) << 24) | data.length, 4);
  return Buffer.concat([header, data]);
}

/** Big-endian 32-bit words, as SPDY frames' fields are. */
export function uint32s(...values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => buffer.writeUInt32BE(value >>> 0, index * 4));
  return buffer;
}

/** A SPDY/3 name/value block before compression: a count, then each name and value length-prefixed. */
export function encodeHeaderBlock(headers: Readonly<Record<string, string>>): Buffer {
  const entries = Object.entries(headers);
  return Buffer.concat([uint32s(entries.length), ...entries.flatMap(([name, value]) => [lengthPrefixed(Buffer.from(name.toLowerCase(), 'latin1')), lengthPrefixed(Buffer.from(value, 'latin1'))])]);
}

/** A session's header compressor (one zlib context with the SPDY dictionary, for one direction). */
export function headerCompressor(): (block: Buffer) => Promise<Buffer> {
  return zlibBlocks(createDeflate({ dictionary: SPDY_DICTIONARY }));
}

/** A decompressed SPDY/3 name/value block; names are lowercase, several values join with NUL. */
export function parseHeaderBlock(block: Buffer): Map<string, string> {
  const headers = new Map<string, string>();
  let offset = 0;
  const take = (): string => {
    const length = block.readUInt32BE(offset);
    const text = block.subarray(offset + 4, offset + 4 + length).toString('latin1');
    offset += 4 + length;
    return text;
  };
  const count = block.readUInt32BE(0);
  offset = 4;
  for (let i = 0; i < count; i++) {
    const name = take();
    headers.set(name, take());
  }
  return headers;
}

/** A session's header decompressor (the other direction's context). */
export function headerDecompressor(): (block: Buffer) => Promise<Buffer> {
  return zlibBlocks(createInflate({ dictionary: SPDY_DICTIONARY }));
}
