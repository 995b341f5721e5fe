// The host's handles on the applications running in pods: backends (pod-backend.ts) that report
// every request they see, and the caller (pod-client.ts) that sends batches of requests.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PodNetwork, Pod, PodProcess } from './netns.ts';
import type { BackendMode, SeenRequest } from './pod-backend.ts';
import type { HttpBatch, HttpResult, TcpExchange } from './pod-client.ts';

const script = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

/** A pod-side process that speaks JSON lines: commands on stdin, answers (by id) and events on stdout. */
class JsonLineProcess {
  readonly #waiting = new Map<number, (message: Record<string, unknown>) => void>();
  readonly #ready: Promise<void>;
  #nextId = 1;

  constructor(
    readonly pod: Pod,
    readonly process: PodProcess,
    onEvent: (message: Record<string, unknown>) => void = () => undefined,
  ) {
    const { child } = process;
    let ready: () => void = () => undefined;
    this.#ready = new Promise((resolve, reject) => {
      ready = resolve;
      child.once('exit', (code) => { reject(new Error(`${pod.name}'s process exited (${String(code)}): ${process.output()}`)); });
    });
    this.#ready.catch(() => undefined);
    if (!child.stdout) throw new Error('no stdout');
    createInterface({ input: child.stdout }).on('line', (line) => {
      const message = JSON.parse(line) as Record<string, unknown>;
      if (message['ready'] === true) ready();
      const id = message['id'] ?? message['ack'];
      const waiter = typeof id === 'number' ? this.#waiting.get(id) : undefined;
      if (waiter && typeof id === 'number') {
        this.#waiting.delete(id);
        waiter(message);
      } else onEvent(message);
    });
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  send(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const answered = new Promise<Record<string, unknown>>((resolve) => this.#waiting.set(id, resolve));
    this.process.child.stdin?.write(`${JSON.stringify({ ...command, id })}\n`);
    return answered;
  }
}

/** An HTTP (and optionally TCP echo) application in a pod, answering as `pod-backend.ts` says. */
export class PodBackend {
  /** Every request the application saw, oldest first. */
  readonly seen: SeenRequest[] = [];
  readonly #lines: JsonLineProcess;

  private constructor(network: PodNetwork, pod: Pod, namespace: string, ports: { http: number[]; tcp?: number[] }) {
    const args = ['--import', 'tsx', script('pod-backend.ts'), '--pod', pod.name, '--namespace', namespace, '--http', ports.http.join(','), '--tcp', (ports.tcp ?? []).join(',')];
    this.#lines = new JsonLineProcess(pod, network.spawn(pod, process.execPath, args), (message) => {
      if (message['seen']) this.seen.push(message['seen'] as SeenRequest);
    });
  }

  static async start(network: PodNetwork, pod: Pod, namespace: string, ports: { http: number[]; tcp?: number[] }): Promise<PodBackend> {
    const backend = new PodBackend(network, pod, namespace, ports);
    await backend.#lines.ready();
    return backend;
  }

  get name(): string {
    return this.#lines.pod.name;
  }

  /** Sets how it answers every request from now on (`{}`: normally). */
  async setMode(mode: BackendMode): Promise<void> {
    await this.#lines.send({ mode });
  }

  /** The requests seen since `from` (an earlier `seen.length`). */
  since(from: number): SeenRequest[] {
    return this.seen.slice(from);
  }
}

export type TcpReply = { reply?: string; error?: string };

/** The calling application of a pod, running as a user other than the proxy's, so its connections are captured. */
export class PodClient {
  readonly #lines: JsonLineProcess;

  private constructor(network: PodNetwork, pod: Pod) {
    this.#lines = new JsonLineProcess(pod, network.spawn(pod, process.execPath, ['--import', 'tsx', script('pod-client.ts')]));
  }

  static async start(network: PodNetwork, pod: Pod): Promise<PodClient> {
    const client = new PodClient(network, pod);
    await client.#lines.ready();
    return client;
  }

  async http(batch: HttpBatch): Promise<HttpResult[]> {
    const answer = await this.#lines.send({ http: batch });
    return answer['results'] as HttpResult[];
  }

  async tcp(exchange: TcpExchange): Promise<TcpReply> {
    const answer = await this.#lines.send({ tcp: exchange });
    return { ...(typeof answer['reply'] === 'string' ? { reply: answer['reply'] } : {}), ...(typeof answer['error'] === 'string' ? { error: answer['error'] } : {}) };
  }
}
