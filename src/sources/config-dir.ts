// Reading a config directory: files to objects, plus the last-good rules across reads.
// No watching and no publishing, so `meshpilot render` and tests can use it offline.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { SourceRef } from '../model/service.ts';
import type { RejectedObject } from '../model/store.ts';
import type { AcceptedObject, ConvertedObjects, ParsedObject, SourcedObject } from './kube-objects.ts';
import { assembleObjects, isAccepted, parseObject } from './kube-objects.ts';
import { describeType, isFields, stringField } from './object-fields.ts';
import { guardReferences } from './reference-guard.ts';
import { readFlowColonsAsGo } from './yaml-compat.ts';

export type TextReadResult =
  | { readonly ok: true; readonly objects: readonly SourcedObject[] }
  | { readonly ok: false; readonly rejected: RejectedObject };

export interface FileRead {
  /** Path relative to the config dir, with `/` separators. */
  readonly file: string;
  readonly result: TextReadResult;
}

const CONFIG_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** A config file larger than this is refused before it is read (YAML costs ~100x its size in memory). */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Kubernetes' own limit on one object (etcd's request size); a larger document is refused. */
export const MAX_OBJECT_BYTES = 1536 * 1024;
/** Cap on list nesting, so a hostile `List` of `List`s cannot recurse forever. */
const MAX_LIST_DEPTH = 8;

function parseFailure(source: SourceRef, position: string, message: string): TextReadResult {
  return {
    ok: false,
    rejected: {
      source,
      object: position,
      issues: [{ code: 'MP_YAML_PARSE', severity: 'error', path: '', message }],
      keptLastGood: false,
    },
  };
}

/** `kind: List` and typed lists (`ServiceList`) as kubectl and the API print them, expanded to items. */
function expandLists(object: unknown, source: SourceRef, position: string, depth = 0): SourcedObject[] {
  if (!isFields(object)) return [{ object, source, position }];
  const kind = stringField(object, 'kind');
  const items = object['items'];
  if (kind === undefined || !kind.endsWith('List') || !Array.isArray(items) || depth >= MAX_LIST_DEPTH) {
    return [{ object, source, position }];
  }
  const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
  const apiVersion = stringField(object, 'apiVersion');
  return items.flatMap((item: unknown, index) => {
    // API list responses leave kind and apiVersion off their items; the list's type supplies them.
    const typed = isFields(item) && itemKind !== undefined && item['kind'] === undefined ? { apiVersion, kind: itemKind, ...item } : item;
    return expandLists(typed, source, `${position}, item ${index + 1}`, depth + 1);
  });
}

function isList(value: unknown): boolean {
  return isFields(value) && Array.isArray(value['items']) && (stringField(value, 'kind') ?? '').endsWith('List');
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Parses one file's text (multi-document YAML or JSON); any syntax error fails the whole file. */
export function readObjectsFromText(text: string, location: string): TextReadResult {
  const source: SourceRef = { origin: 'file', location };
  const documents = parseAllDocuments(text);
  const objects: SourcedObject[] = [];
  for (const [index, document] of documents.entries()) {
    const position = `document ${index + 1}`;
    const [error] = document.errors;
    if (error) {
      const where = error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : position;
      const reason = error.message.split(/ at line \d+, column \d+/)[0] ?? error.message;
      return parseFailure(source, position, `${where}: ${reason}: fix the YAML syntax; nothing from this file changed what is served`);
    }
    if (document.contents === null) continue;
    let value: unknown;
    try {
      readFlowColonsAsGo(document, text);
      value = document.toJS();
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      return parseFailure(source, position, `${position}: ${reason}: fix the YAML; nothing from this file changed what is served`);
    }
    if (value === null || value === undefined) continue;
    const size = document.range[2] - document.range[0];
    if (size > MAX_OBJECT_BYTES && !isList(value)) {
      const message = `is ${mebibytes(size)}, over the ${mebibytes(MAX_OBJECT_BYTES)} Kubernetes allows one object: split it; nothing from this file changed what is served`;
      return { ok: false, rejected: { source, object: position, issues: [{ code: 'MP_OBJECT_INVALID', severity: 'error', path: '', message }], keptLastGood: false } };
    }
    // Random bytes often parse as one YAML scalar: a file like that is broken, not emptied.
    if (!isFields(value)) {
      return {
        ok: false,
        rejected: {
          source,
          object: position,
          issues: [{ code: 'MP_OBJECT_INVALID', severity: 'error', path: '', message: `is not a Kubernetes object (got ${describeType(value)}): each document must be a map with apiVersion, kind and metadata; nothing from this file changed what is served` }],
          keptLastGood: false,
        },
      };
    }
    objects.push(...expandLists(value, source, position));
  }
  return { ok: true, objects };
}

export interface DirectoryListing {
  /** Config files relative to the dir, `/`-separated, sorted. */
  readonly files: readonly string[];
  /** Absolute paths of the dir and every subdirectory read (what to watch). */
  readonly directories: readonly string[];
  /** Subdirectories (relative, `/`-separated) that could not be listed, and why. */
  readonly unreadable: readonly { readonly directory: string; readonly reason: string }[];
}

export function isHidden(name: string): boolean {
  return name.startsWith('.');
}

/** Whether `real` (a resolved path) is `root` or below it. */
function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : `${root}${path.sep}`);
}

/**
 * Recursive, sorted, skipping dotfiles and dot-directories; follows symlinks that stay inside the
 * directory (ConfigMap mounts link `file.yaml -> ..data/file.yaml`), never those that leave it.
 */
export async function listConfigFiles(dir: string): Promise<DirectoryListing> {
  const files: string[] = [];
  const directories: string[] = [];
  const unreadable: { directory: string; reason: string }[] = [];
  const visited = new Set<string>();
  const root = await realpath(dir);
  const walk = async (absolute: string, relative: string): Promise<void> => {
    const real = await realpath(absolute);
    if (visited.has(real) || !isInside(root, real)) return;
    visited.add(real);
    directories.push(absolute);
    for (const entry of await readdir(absolute, { withFileTypes: true })) {
      if (isHidden(entry.name)) continue;
      const entryPath = path.join(absolute, entry.name);
      const entryRelative = relative ? `${relative}/${entry.name}` : entry.name;
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        const target = await stat(entryPath).catch(() => undefined);
        isDirectory = target?.isDirectory() ?? false;
        isFile = target?.isFile() ?? false;
      }
      if (isDirectory) {
        await walk(entryPath, entryRelative).catch((error: unknown) => {
          // One unreadable subdirectory must not stop the rest of the tree from applying.
          if (errorCode(error) !== 'ENOENT') unreadable.push({ directory: entryRelative, reason: error instanceof Error ? error.message : String(error) });
        });
      }
      else if (isFile && CONFIG_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) files.push(entryRelative);
    }
  };
  await walk(dir, '');
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { files, directories, unreadable };
}

export function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

async function readConfigFile(dir: string, file: string): Promise<FileRead | undefined> {
  let text: string;
  try {
    const real = await realpath(path.join(dir, file));
    if (!isInside(await realpath(dir), real)) {
      return { file, result: refusedFile(file, 'is a link to a file outside the config directory and was not read: copy the file into the directory, or link to one inside it') };
    }
    const { size } = await stat(real);
    if (size > MAX_FILE_BYTES) {
      return { file, result: refusedFile(file, `is ${mebibytes(size)}, over the ${mebibytes(MAX_FILE_BYTES)} a config file may be: split it into several files (its last good objects are still served)`) };
    }
    text = await readFile(real, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    const reason = error instanceof Error ? error.message : String(error);
    return { file, result: parseFailure({ origin: 'file', location: file }, 'file', `cannot be read (${reason}): fix its permissions`) };
  }
  return { file, result: readObjectsFromText(text, file) };
}

export async function readDirectory(dir: string): Promise<{ listing: DirectoryListing; reads: FileRead[] }> {
  const listing = await listConfigFiles(dir);
  const reads = await Promise.all(listing.files.map((file) => readConfigFile(dir, file)));
  const unreadable = listing.unreadable.map(({ directory, reason }): FileRead => ({
    file: `${directory}/`,
    result: refusedFile(`${directory}/`, `cannot be listed (${reason}): fix its permissions; the files last read from it are still served`),
  }));
  return { listing, reads: [...reads.filter((read): read is FileRead => read !== undefined), ...unreadable] };
}

function refusedFile(file: string, message: string): TextReadResult {
  return { ok: false, rejected: { source: { origin: 'file', location: file }, object: 'file', issues: [{ code: 'MP_FILE_REFUSED', severity: 'error', path: '', message }], keptLastGood: false } };
}

/** What a directory held at its last good reads; the input for keeping last good state. */
export interface DirectoryState {
  /** Accepted objects of each file at its last good parse. */
  readonly files: ReadonlyMap<string, readonly AcceptedObject[]>;
  /** The last accepted version of each object, by kind/namespace/name. */
  readonly objects: ReadonlyMap<string, AcceptedObject>;
}

export const EMPTY_DIRECTORY_STATE: DirectoryState = { files: new Map(), objects: new Map() };

/**
 * Applies the last-good rules to fresh reads: a file that fails to parse keeps its previous
 * objects; an object that fails validation keeps its previous version. Pure.
 */
export function applyLastGood(previous: DirectoryState, fresh: readonly FileRead[]): { state: DirectoryState; parsed: ParsedObject[] } {
  const reads = [...fresh.map(emptiedAsRefused(previous)), ...filesUnderUnreadable(previous, fresh)];
  const perFile = reads.map(({ file, result }): { file: string; parsed: ParsedObject[]; hasLastGood: boolean } => {
    if (result.ok) return { file, parsed: keepVanishedWhileBroken(previous.files.get(file) ?? [], result.objects.map(parseObject)), hasLastGood: true };
    const kept = previous.files.get(file);
    const rejected: ParsedObject = { type: 'rejected', source: result.rejected.source, rejected: { ...result.rejected, keptLastGood: kept !== undefined } };
    // A file that has never parsed has no last good state to keep.
    return { file, parsed: [...(kept ?? []), rejected], hasLastGood: kept !== undefined };
  });
  const acceptedKeys = new Set(perFile.flatMap(({ parsed }) => parsed.filter(isAccepted).map((object) => object.key)));
  const files = new Map<string, AcceptedObject[]>();
  const parsed: ParsedObject[] = [];
  for (const entry of perFile) {
    const fileObjects: AcceptedObject[] = [];
    for (const object of entry.parsed) {
      if (object.type === 'rejected' && object.key !== undefined && !acceptedKeys.has(object.key)) {
        const lastGood = previous.objects.get(object.key);
        if (lastGood) {
          acceptedKeys.add(object.key);
          parsed.push(lastGood, { ...object, rejected: { ...object.rejected, keptLastGood: true } });
          fileObjects.push(lastGood);
          continue;
        }
      }
      parsed.push(object);
      if (isAccepted(object)) fileObjects.push(object);
    }
    if (entry.hasLastGood) files.set(entry.file, fileObjects);
  }
  const guarded = guardReferences(servedBeforeFirst(previous, parsed), {
    lastServed: (key) => previous.objects.get(key),
    firstRead: previous === EMPTY_DIRECTORY_STATE,
  });
  // What is remembered as served is what the guard let through (an edit it held back is not).
  const served = new Map<string, AcceptedObject>();
  for (const object of guarded) if (isAccepted(object) && !served.has(object.key)) served.set(object.key, object);
  for (const [file, fileObjects] of files) files.set(file, fileObjects.flatMap((object) => served.get(object.key) ?? []));
  return { state: { files, objects: served }, parsed: guarded };
}

function hasErrors(parsed: ParsedObject): boolean {
  return parsed.type === 'rejected' && parsed.rejected.issues.some((issue) => issue.severity === 'error');
}

/**
 * While a file holds an object in error, the objects that vanished from it stay: a truncated
 * write or a mangled name is not a deletion (deletions apply once the file reads clean).
 */
function keepVanishedWhileBroken(before: readonly AcceptedObject[], parsed: ParsedObject[]): ParsedObject[] {
  if (before.length === 0 || !parsed.some(hasErrors)) return parsed;
  const present = new Set(parsed.map((object) => (object.type === 'ignored' ? undefined : object.key)));
  const vanished = before.filter((object) => !present.has(object.key));
  if (vanished.length === 0) return parsed;
  const marked = parsed.map((object): ParsedObject =>
    object.type === 'rejected' && object.key === undefined ? { ...object, rejected: { ...object.rejected, keptLastGood: true } } : object,
  );
  return [...vanished, ...marked];
}

/** Of two copies of one object in different files, the one served before stays served (else the first file's). */
function servedBeforeFirst(previous: DirectoryState, parsed: ParsedObject[]): ParsedObject[] {
  const copies = new Map<string, number[]>();
  parsed.forEach((object, index) => {
    if (isAccepted(object)) copies.set(object.key, [...(copies.get(object.key) ?? []), index]);
  });
  const out = [...parsed];
  for (const [key, indexes] of copies) {
    const [first] = indexes;
    const servedAt = previous.objects.get(key)?.source.location;
    const served = indexes.find((index) => out[index]?.source.location === servedAt);
    if (indexes.length < 2 || first === undefined || served === undefined || served === first) continue;
    [out[first], out[served]] = [out[served] as ParsedObject, out[first] as ParsedObject];
  }
  return out;
}

/** A file that held objects and now holds none is more likely being rewritten than meant to delete them. */
function emptiedAsRefused(previous: DirectoryState): (read: FileRead) => FileRead {
  return (read) => {
    const before = previous.files.get(read.file)?.length ?? 0;
    if (!read.result.ok || read.result.objects.length > 0 || before === 0) return read;
    return { file: read.file, result: refusedFile(read.file, `is empty but held ${before} object${before === 1 ? '' : 's'}: they are still served; delete the file to remove them`) };
  };
}

/** The files last read under a directory that cannot be listed now, kept as they were. */
function filesUnderUnreadable(previous: DirectoryState, reads: readonly FileRead[]): FileRead[] {
  const unreadable = reads.filter((r) => r.file.endsWith('/')).map((r) => r.file);
  if (unreadable.length === 0) return [];
  const present = new Set(reads.map((r) => r.file));
  return [...previous.files.keys()]
    .filter((file) => !present.has(file) && unreadable.some((dir) => file.startsWith(dir)))
    .map((file) => ({ file, result: refusedFile(file, 'is in a directory that cannot be listed now: its last good objects are still served') }));
}

/** Reads and converts a directory once, without history (for `meshpilot render` and tests). */
export async function loadDirectory(dir: string): Promise<ConvertedObjects> {
  const { reads } = await readDirectory(dir);
  return assembleObjects(applyLastGood(EMPTY_DIRECTORY_STATE, reads).parsed);
}
