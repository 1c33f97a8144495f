// tslab starts reading its sockets before it binds them, and answers on them as soon as a message comes.
// zeromq 6 refuses a send or a receive while the socket's bind is in progress ("Socket is blocked by a
// bind or unbind operation", EBUSY), and tslab neither waits nor retries: a client that connects early
// (nbconvert, JupyterLab, this project's runner) can leave the kernel deaf on its shell socket, so that it
// never answers again. waitOutBinds makes send and receive wait for the bind instead: while they meet
// that error they try again every 5 ms, for 10 s at most.
// tslab also sends without waiting for the previous send to finish, and zeromq 6 allows one send in
// progress per socket ("Socket is busy writing", EBUSY): when a send cannot complete at once (a busy
// machine, a live progress display updating many times a second), the next one threw, as an unhandled
// rejection that ended the kernel. Sends on a socket therefore go one after another, in call order.
const BIND_IN_PROGRESS = "blocked by a bind or unbind operation";
const RETRY_MS = 5;
const GIVE_UP_MS = 10_000;

function waitOutBinds(zmq) {
  const proto = zmq.Socket.prototype;
  if (Object.prototype.hasOwnProperty.call(proto, "waitsOutBinds")) return;
  for (const name of ["send", "receive"]) {
    const original = proto[name];
    Object.defineProperty(proto, name, {
      configurable: true,
      value: async function (...args) {
        const deadline = Date.now() + GIVE_UP_MS;
        for (;;) {
          try {
            return await original.apply(this, args);
          } catch (error) {
            if (error?.code !== "EBUSY" || !String(error.message).includes(BIND_IN_PROGRESS) || Date.now() > deadline) throw error;
          }
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        }
      },
    });
  }
  // One send at a time per socket: each waits for the one before it (whatever its outcome).
  const waiting = proto.send;
  const lastSend = new WeakMap();
  Object.defineProperty(proto, "send", {
    configurable: true,
    value: function (...args) {
      const previous = lastSend.get(this) ?? Promise.resolve();
      const next = previous.then(() => waiting.apply(this, args));
      lastSend.set(this, next.catch(() => undefined));
      return next;
    },
  });
  Object.defineProperty(proto, "waitsOutBinds", { value: true });
}

module.exports = { waitOutBinds };
