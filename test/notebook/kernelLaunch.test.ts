import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import * as zmq from "zeromq";
import { KERNEL_DIR } from "../../src/notebook/kernel";

// The kernel launcher's fix, loaded as the launcher loads it (plain JavaScript beside kernel.json).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { waitOutBinds } = require(path.join(KERNEL_DIR, "waitOutBinds.js")) as { waitOutBinds(module: typeof zmq): void };

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
  await assert.rejects(async () => dealer.send("after close"), (error: NodeJS.ErrnoException) => error.code !== "EBUSY");
  router.close();
  publisher.close();
});
