import { createHash } from "node:crypto";
import * as tf from "@tensorflow/tfjs";
import { TUTORIAL_CONFIG } from "../src/vae/config";
import { loadMnist } from "../src/vae/data";
import { buildModel, trainableVariables } from "../src/vae/model";
import { forwardLoss } from "../src/vae/train";

/** SHA-256 of the VAE's gradients on 128 real digits: the same code runs in a child process below. */
export function gradientDigest(): string {
  const data = loadMnist({ dataSource: "embedded", trainSize: 128, testSize: 1, seed: 9 });
  const model = buildModel(TUTORIAL_CONFIG);
  const x = tf.tensor2d(data.xTrain, [128, 784]);
  const epsilon = tf.tensor2d(
    new Float32Array(256).map((_, i) => Math.cos(i)),
    [128, 2],
  );
  const { grads } = tf.variableGrads(() => forwardLoss(model, x, epsilon, 1).total, trainableVariables(model));
  const hash = createHash("sha256");
  for (const grad of Object.values(grads)) hash.update(Buffer.from((grad.dataSync() as Float32Array).buffer));
  model.vae.dispose();
  return hash.digest("hex");
}
