import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import * as zmq from "zeromq";
import { KERNEL_DIR } from "../../src/notebook/kernel";

// The kernel launcher's fix, loaded as the launcher loads it (plain JavaScript beside kernel.json).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { waitOutBinds } = require(path.join(KERNEL_DIR, "waitOutBinds.js")) as {
  waitOutBinds(module: typeof zmq): void;
};

const BLOCKED = /Socket is blocked by a bind or unbind operation/;

test("zeromq 6 as shipped refuses a receive or a send while the socket is binding (what tslab runs into)", async () => {
  const router = new zmq.Router();
  const binding = router.bind("tcp://127.0.0.1:0");
  await assert.rejects(async () => router.receive(), BLOCKED);
  await binding;
  const publisher = new zmq.Publisher();
  const publisherBinding = publisher.bind("tcp://127.0.0.1:0");
  await assert.rejects(async () => publisher.send("status"), BLOCKED);
  await publisherBinding;
  router.close();
  publisher.close();
});

/** A dealer whose peer does not read yet, with room for one message: its next send cannot complete at once. */
async function cloggedDealer() {
  const router = new zmq.Router();
  await router.bind("tcp://127.0.0.1:0");
  const dealer = new zmq.Dealer({ sendHighWaterMark: 1, linger: 0 });
  dealer.connect(router.lastEndpoint as string);
  await new Promise((resolve) => setTimeout(resolve, 100));
  return { router, dealer };
}

test("zeromq 6 as shipped allows one send in progress per socket: a second, not awaited (as tslab sends), fails", async () => {
  const { router, dealer } = await cloggedDealer();
  const sends: Promise<unknown>[] = [];
  let busy: unknown;
  for (let i = 0; i < 10 && !busy; i++) {
    try {
      sends.push(dealer.send(`message ${i}`).catch((error: unknown) => (busy = error)));
    } catch (error) {
      busy = error;
    }
    await Promise.resolve();
  }
  assert.match(String((busy as Error)?.message), /Socket is busy writing/);
  dealer.close();
  router.close();
});

test("with the launcher's fix, sends issued while one is in progress wait their turn and arrive in order", async () => {
  waitOutBinds(zmq);
  const { router, dealer } = await cloggedDealer();
  const sends = Array.from({ length: 10 }, (_, i) => dealer.send(`message ${i}`));
  const received: string[] = [];
  for (let i = 0; i < 10; i++) received.push((await router.receive())[1].toString());
  await Promise.all(sends);
  assert.deepEqual(
    received,
    Array.from({ length: 10 }, (_, i) => `message ${i}`),
  );
  dealer.close();
  router.close();
});

test("with the launcher's fix, a receive and a send issued during the bind wait for it and go through", async () => {
  waitOutBinds(zmq);
  waitOutBinds(zmq); // a second call changes nothing
  const router = new zmq.Router();
  const binding = router.bind("tcp://127.0.0.1:0");
  const received = router.receive(); // as tslab's read loop does, before the bind is done
  await binding;
  const dealer = new zmq.Dealer();
  dealer.connect(router.lastEndpoint as string);
  await dealer.send("kernel_info_request");
  const [, body] = await received;
  assert.equal(body.toString(), "kernel_info_request");

  const publisher = new zmq.Publisher();
  const publisherBinding = publisher.bind("tcp://127.0.0.1:0");
  await publisher.send("status"); // waits for the bind instead of failing
  await publisherBinding;
  // Other errors are not retried: a closed socket still fails at once.
  dealer.close();
  await assert.rejects(
    async () => dealer.send("after close"),
    (error: NodeJS.ErrnoException) => error.code !== "EBUSY",
  );
  router.close();
  publisher.close();
});
