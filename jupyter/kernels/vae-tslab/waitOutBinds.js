// tslab starts reading its sockets before it binds them, and answers on them as soon as a message comes.
// zeromq 6 refuses a send or a receive while the socket's bind is in progress ("Socket is blocked by a
// bind or unbind operation", EBUSY), and tslab neither waits nor retries: a client that connects early
// (nbconvert, JupyterLab, this project's runner) can leave the kernel deaf on its shell socket, so that it
// never answers again. waitOutBinds makes send and receive wait for the bind instead: while they meet
// that error they try again every 5 ms, for 10 s at most. Nothing else changes.
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
  Object.defineProperty(proto, "waitsOutBinds", { value: true });
}

module.exports = { waitOutBinds };
