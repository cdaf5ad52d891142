/**
 * @module test/faults/fault-support
 * What the fault tests share: HTTP calls with deadlines that report how a body
 * ended, polling with a deadline, the real `wharf verify`, and /proc readings
 * of a spawned server (resident memory, open descriptors).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { expect } from 'vitest';
import { runWharf } from '../support/spawn-wharf.js';
import { sha256 } from '../support/http.js';

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface FetchOptions {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** A connection of its own (undici Client); the global pool by default. */
  dispatcher?: Dispatcher;
}

/** One request, its whole body read; a cut body rejects. */
export async function fetchBytes(url: string, options: FetchOptions = {}, timeoutMs = 20_000): Promise<Fetched> {
  const response = await request(url, {
    dispatcher: options.dispatcher,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
}

/** Polls `check` every 50 ms until it returns a value other than undefined; fails by name at the deadline. */
export async function waitUntil<T>(check: () => Promise<T | undefined>, ms: number, name: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`deadline: ${name} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function partFiles(dataDir: string): Promise<string[]> {
  return (await readdir(join(dataDir, 'tmp'))).filter((f) => f.endsWith('.part'));
}

/** Runs the real `wharf verify` and expects a consistent store; returns its stdout. */
export async function expectVerifyClean(dataDir: string, extra: string[] = []): Promise<string> {
  const result = await runWharf(['verify', '--data', dataDir, ...extra], { timeoutMs: 60_000 });
  expect(
    { code: result.code, stderr: result.stderr },
    `wharf verify --data ${dataDir}\n${result.stdout}${result.stderr}`,
  ).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toMatch(/^result: consistent/m);
  return result.stdout;
}

/** Pulls a manifest and its blobs by digest, checking every byte. */
export async function expectPulls(
  base: string,
  name: string,
  reference: string,
  expected: { manifest: Buffer; blobs: Iterable<[string, Buffer]> },
): Promise<void> {
  const manifest = await fetchBytes(`${base}/v2/${name}/manifests/${reference}`);
  expect(manifest.status, `GET ${name}:${reference}`).toBe(200);
  expect(manifest.body.equals(expected.manifest), `${name}:${reference} bytes`).toBe(true);
  for (const [digest, bytes] of expected.blobs) {
    const blob = await fetchBytes(`${base}/v2/${name}/blobs/${digest}`);
    expect(blob.status, `GET ${name}@${digest}`).toBe(200);
    expect(sha256(blob.body)).toBe(sha256(bytes));
  }
}

/** VmRSS of a process in bytes (Linux). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

export async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

export const MiB = 1024 * 1024;
