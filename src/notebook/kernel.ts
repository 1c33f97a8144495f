/**
 * A small Jupyter client: starts the project's tslab kernel (`jupyter/kernels/vae-tslab`) and runs
 * code over the Jupyter messaging protocol (ZeroMQ, HMAC-SHA256 signed messages), collecting the
 * outputs as nbformat 4 output objects. tslab reports a failing cell only through the execute_reply's
 * status and its stderr, so both are kept. Used by `npm run notebooks` (`src/notebook/runner.ts`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../vae/data";
import { procStat, procThreads } from "../system/proc";
import { withTimeLimit } from "../system/timeLimit";

export const KERNEL_NAME = "vae-tslab";
export const KERNEL_DIR = path.join(PROJECT_ROOT, "jupyter", "kernels", KERNEL_NAME);

/**
 * The environment the kernel spec adds (`env` in kernel.json), which Jupyter applies to the kernels it
 * starts; applied here too, so that a headless run is the kernel a user gets. It fixes glibc's threshold
 * for serving an allocation by its own mapping (a kernel that reran notebooks 03 and 04 grew by its
 * freed buffers otherwise: docs/robustness.md).
 */
export function kernelSpecEnv(): Record<string, string> {
  const spec = JSON.parse(fs.readFileSync(path.join(KERNEL_DIR, "kernel.json"), "utf8")) as {
    env?: Record<string, string>;
  };
  return spec.env ?? {};
}

/** One nbformat 4 output. */
export type Output =
  | { output_type: "stream"; name: string; text: string }
  | { output_type: "display_data"; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | {
      output_type: "execute_result";
      data: Record<string, unknown>;
      metadata: Record<string, unknown>;
      execution_count: number | null;
    }
  | { output_type: "error"; ename: string; evalue: string; traceback: string[] };

export interface ExecuteResult {
  readonly status: "ok" | "error" | "abort";
  readonly executionCount: number | null;
  readonly outputs: Output[];
  /** Everything the cell wrote to stderr (tslab's compile and runtime errors land here). */
  readonly stderr: string;
}

interface Message {
  header: { msg_id: string; msg_type: string; session: string; username: string; date: string; version: string };
  parent_header: { msg_id?: string };
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
}

const DELIMITER = "<IDS|MSG>";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * What a process was doing, read from /proc (Linux): its CPU time and each thread's name and state, so
 * that a cell that never ends can be told apart as busy (R) or waiting (S), and in which threads.
 */
export function describeProcess(pid: number | undefined): string {
  const main = pid === undefined ? undefined : procStat(pid);
  if (pid === undefined || !main) return "";
  const threads = procThreads(pid).map((t) => `${t.name}:${t.state}:${t.cpuSeconds.toFixed(1)}s`);
  return (
    `Kernel process ${pid}: ${main.cpuSeconds.toFixed(1)} s of CPU in all; ` +
    `threads (name:state:CPU) ${threads.join(" ")}`
  );
}

interface Pending {
  outputs: Output[];
  stderr: string;
  idle: () => void;
}

export class KernelClient {
  private readonly session = randomUUID();
  private readonly pending = new Map<string, Pending>();
  /** display_id -> outputs showing it, so update_display_data replaces them in place. */
  private readonly displays = new Map<string, Output[]>();
  private readonly replies = new Map<string, (message: Message | undefined) => void>();
  private kernelLog = "";
  private exited: string | undefined;

  private constructor(
    private readonly key: string,
    private readonly process: ChildProcess,
    private readonly shell: import("zeromq").Dealer,
    private readonly iopub: import("zeromq").Subscriber,
    private readonly connectionFile: string,
  ) {}

  /** Starts the kernel at the project root, its spec's `env` and then `env` added to this process's environment. */
  static async start(options: { env?: NodeJS.ProcessEnv; startTimeoutMs?: number } = {}): Promise<KernelClient> {
    const zmq = await import("zeromq");
    const key = randomBytes(16).toString("hex");
    const ports = {
      shell_port: await freePort(),
      iopub_port: await freePort(),
      stdin_port: await freePort(),
      control_port: await freePort(),
      hb_port: await freePort(),
    };
    const connectionFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vae-kernel-")), "connection.json");
    fs.writeFileSync(
      connectionFile,
      JSON.stringify({
        ...ports,
        ip: "127.0.0.1",
        transport: "tcp",
        key,
        signature_scheme: "hmac-sha256",
        kernel_name: KERNEL_NAME,
      }),
    );
    const child = spawn(process.execPath, [path.join(KERNEL_DIR, "launch.js"), connectionFile], {
      env: { ...process.env, ...kernelSpecEnv(), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // Nothing sent to a kernel matters once its socket is closed (the kernel has answered, exited or been
    // stopped): with no linger, and a context that does not wait at exit, a message queued for a kernel
    // that is gone can never keep this process from exiting.
    zmq.context.blocky = false;
    const shell = new zmq.Dealer({ linger: 0 });
    const iopub = new zmq.Subscriber({ linger: 0 });
    shell.connect(`tcp://127.0.0.1:${ports.shell_port}`);
    iopub.connect(`tcp://127.0.0.1:${ports.iopub_port}`);
    iopub.subscribe();
    const client = new KernelClient(key, child, shell, iopub, connectionFile);
    child.stdout?.on("data", (chunk) => (client.kernelLog += chunk));
    child.stderr?.on("data", (chunk) => (client.kernelLog += chunk));
    child.on("exit", (code, signal) => {
      client.exited = `the kernel exited (code ${code}, signal ${signal})`;
      for (const pending of client.pending.values()) pending.idle();
      for (const resolve of client.replies.values()) resolve(undefined);
    });
    void client.readLoop(client.iopub, (message) => client.onIopub(message));
    void client.readLoop(client.shell, (message) => client.replies.get(message.parent_header.msg_id ?? "")?.(message));
    await client.waitReady(options.startTimeoutMs ?? 60_000);
    return client;
  }

  private sign(parts: string[]): string {
    const hmac = createHmac("sha256", this.key);
    for (const part of parts) hmac.update(part);
    return hmac.digest("hex");
  }

  private message(msgType: string, content: Record<string, unknown>): Message {
    return {
      header: {
        msg_id: randomUUID(),
        msg_type: msgType,
        session: this.session,
        username: "vae",
        date: new Date().toISOString(),
        version: "5.3",
      },
      parent_header: {},
      metadata: {},
      content,
    };
  }

  private async send(message: Message): Promise<void> {
    const parts = [message.header, message.parent_header, message.metadata, message.content].map((part) =>
      JSON.stringify(part),
    );
    await this.shell.send([DELIMITER, this.sign(parts), ...parts]);
  }

  private async readLoop(socket: AsyncIterable<Buffer[]>, handle: (message: Message) => void): Promise<void> {
    try {
      for await (const frames of socket) {
        const strings = frames.map((frame) => frame.toString("utf8"));
        const at = strings.indexOf(DELIMITER);
        if (at < 0) continue;
        const [signature, header, parent, metadata, content] = strings.slice(at + 1);
        if (signature !== this.sign([header, parent, metadata, content])) continue;
        handle({
          header: JSON.parse(header),
          parent_header: JSON.parse(parent),
          metadata: JSON.parse(metadata),
          content: JSON.parse(content),
        });
      }
    } catch {
      // The socket was closed on shutdown.
    }
  }

  /** Repeats kernel_info_request until iopub carries its status: both channels are then connected. */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`The tslab kernel did not start: ${this.exited}.\n${this.kernelLog}`);
      const request = this.message("kernel_info_request", {});
      let seen = false;
      this.pending.set(request.header.msg_id, { outputs: [], stderr: "", idle: () => (seen = true) });
      await this.send(request);
      const until = Date.now() + 1000;
      while (!seen && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      this.pending.delete(request.header.msg_id);
      if (seen) return;
    }
    throw new Error(`The tslab kernel did not answer within ${timeoutMs} ms.\n${this.kernelLog}`);
  }

  private onIopub(message: Message): void {
    const pending = this.pending.get(message.parent_header.msg_id ?? "");
    const { msg_type: type } = message.header;
    const content = message.content;
    if (type === "update_display_data") {
      const id = (content.transient as { display_id?: string } | undefined)?.display_id;
      for (const output of (id && this.displays.get(id)) || []) {
        if (output.output_type === "display_data") output.data = content.data as Record<string, unknown>;
      }
      return;
    }
    if (!pending) return;
    if (type === "status" && content.execution_state === "idle") pending.idle();
    else if (type === "stream") {
      const name = content.name as string;
      const text = content.text as string;
      if (name === "stderr") pending.stderr += text;
      const last = pending.outputs[pending.outputs.length - 1];
      if (last && last.output_type === "stream" && last.name === name) last.text += text;
      else pending.outputs.push({ output_type: "stream", name, text });
    } else if (type === "display_data") {
      const output: Output = {
        output_type: "display_data",
        data: content.data as Record<string, unknown>,
        metadata: (content.metadata as Record<string, unknown>) ?? {},
      };
      pending.outputs.push(output);
      const id = (content.transient as { display_id?: string } | undefined)?.display_id;
      if (id) this.displays.set(id, [...(this.displays.get(id) ?? []), output]);
    } else if (type === "execute_result") {
      pending.outputs.push({
        output_type: "execute_result",
        data: content.data as Record<string, unknown>,
        metadata: (content.metadata as Record<string, unknown>) ?? {},
        execution_count: (content.execution_count as number) ?? null,
      });
    } else if (type === "error") {
      pending.outputs.push({
        output_type: "error",
        ename: String(content.ename),
        evalue: String(content.evalue),
        traceback: (content.traceback as string[]) ?? [],
      });
    }
  }

  /**
   * Runs one cell's code and waits for its reply and for the kernel to go idle. With `timeoutMs`, a cell
   * still running by then stops the kernel and comes back as an error naming the limit.
   */
  async execute(code: string, timeoutMs?: number): Promise<ExecuteResult> {
    if (this.exited) throw new Error(`Cannot execute: ${this.exited}.\n${this.kernelLog}`);
    const request = this.message("execute_request", {
      code,
      silent: false,
      store_history: true,
      user_expressions: {},
      allow_stdin: false,
      stop_on_error: true,
    });
    const pending: Pending = { outputs: [], stderr: "", idle: () => undefined };
    const idle = new Promise<void>((resolve) => (pending.idle = resolve));
    const reply = new Promise<Message | undefined>((resolve) => this.replies.set(request.header.msg_id, resolve));
    this.pending.set(request.header.msg_id, pending);
    await this.send(request);
    const settled = await withTimeLimit(Promise.all([reply, idle]), timeoutMs ?? 0, () => "timeout" as const);
    this.pending.delete(request.header.msg_id);
    this.replies.delete(request.header.msg_id);
    if (settled === "timeout") {
      const state = describeProcess(this.process.pid);
      this.process.kill("SIGKILL");
      const seconds = (timeoutMs as number) / 1000;
      return {
        status: "error",
        executionCount: null,
        outputs: pending.outputs,
        stderr:
          `${pending.stderr}The cell was still running after ${seconds} s, so the kernel was stopped ` +
          `(raise the limit with --cell-timeout or VAE_CELL_TIMEOUT).\n${state}\n${this.kernelLog}`,
      };
    }
    const [message] = settled;
    if (!message) {
      return {
        status: "error",
        executionCount: null,
        outputs: pending.outputs,
        stderr: `${pending.stderr}${this.exited ?? "the kernel died"}\n${this.kernelLog}`,
      };
    }
    const status = message.content.status as ExecuteResult["status"];
    return {
      status,
      executionCount: (message.content.execution_count as number) ?? null,
      outputs: pending.outputs,
      stderr: pending.stderr,
    };
  }

  /** Asks the kernel to shut down, then makes sure the process is gone. */
  async shutdown(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise((resolve) => this.process.once("exit", resolve));
      await this.send(this.message("shutdown_request", { restart: false })).catch(() => undefined);
      const timer = setTimeout(() => this.process.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    this.shell.close();
    this.iopub.close();
    fs.rmSync(path.dirname(this.connectionFile), { recursive: true, force: true });
  }
}
