/**
 * Adam as Keras computes it. Keras (the tutorial's `vae.compile(optimizer='adam')`, learning rate
 * 1e-3, epsilon 1e-7) folds the bias corrections into the step size:
 *   t += 1;  alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   m += (g - m) * (1 - beta1);  v += (g^2 - v) * (1 - beta2);  w -= alpha * m / (sqrt(v) + epsilon)
 * `tf.train.adam` divides m and v by their corrections instead and adds epsilon to the corrected
 * sqrt(v): the same up to where epsilon enters, with two more element-wise ops per weight array.
 * Introduced in `notebooks/02-model.ipynb` (training).
 *
 * Every `DENORMAL_FLUSH_EVERY` steps, m and v entries below the smallest normal float32 are set to 0,
 * as TensorFlow's CPU kernels do with flush-to-zero: the running averages of weights whose gradient
 * stays zero (dead ReLU units) decay into denormal floats, and arithmetic on denormals made wasm Adam
 * three times slower after about 1,400 steps. Values that small change no weight.
 */
import * as tf from "@tensorflow/tfjs";

/** A named tensor, as optimizers exchange weights (`NamedTensor` is not re-exported by tfjs). */
type NamedTensor = { name: string; tensor: tf.Tensor };

/** The smallest normal float32; anything smaller in magnitude is a denormal. */
export const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;
/** Steps between two flushes of denormal moments to zero. */
export const DENORMAL_FLUSH_EVERY = 32;

export interface AdamUpdateAttrs {
  readonly alpha: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/** One Adam update of one weight array: returns the new w, m and v. */
export function adamUpdate(w: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, { alpha, beta1, beta2, epsilon }: AdamUpdateAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const newM = tf.add(m, tf.mul(tf.sub(g, m), 1 - beta1));
    const newV = tf.add(v, tf.mul(tf.sub(tf.square(g), v), 1 - beta2));
    const newW = tf.sub(w, tf.div(tf.mul(newM, alpha), tf.add(tf.sqrt(newV), epsilon)));
    return [newW, newM, newV];
  });
}

/** `x` with every entry of magnitude below the smallest normal float32 set to 0 (fast ops only). */
export function flushDenormals(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.step(tf.sub(tf.abs(x), FLOAT32_MIN_NORMAL))));
}

/** Keras's Adam (see the module comment). `kerasAdam(lr)` is the tutorial's optimizer. */
export class KerasAdam extends tf.Optimizer {
  static readonly className = "KerasAdam";
  private readonly slots = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(
    readonly learningRate = 1e-3,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-7,
  ) {
    super();
    for (const [name, value] of Object.entries({ learningRate, beta1, beta2, epsilon })) {
      if (!Number.isFinite(value) || value <= 0 || (name.startsWith("beta") && value >= 1)) {
        throw new RangeError(`Adam ${name} must be a finite number > 0${name.startsWith("beta") ? " and < 1" : ""}; got ${value}.`);
      }
    }
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const gradients = Array.isArray(variableGradients)
      ? variableGradients.map(({ name, tensor }) => [name, tensor] as const)
      : Object.entries(variableGradients);
    this.incrementIterations();
    const t = this.iterations;
    const alpha = (this.learningRate * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    const attrs = { alpha, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
    const variables = tf.engine().registeredVariables;
    tf.tidy(() => {
      for (const [name, gradient] of gradients) {
        if (gradient == null) continue;
        const variable = variables[name];
        if (!variable) throw new Error(`Adam got a gradient for "${name}", which is not a variable.`);
        const slot = this.slot(name, variable);
        const [w, m, v] = adamUpdate(variable, slot.m, slot.v, gradient, attrs);
        const flush = t % DENORMAL_FLUSH_EVERY === 0;
        variable.assign(w);
        slot.m.assign(flush ? flushDenormals(m) : m);
        slot.v.assign(flush ? flushDenormals(v) : v);
      }
    });
  }

  private slot(name: string, variable: tf.Variable): { m: tf.Variable; v: tf.Variable } {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = tf.tidy(() => ({
        m: tf.zerosLike(variable).variable(false, `${name}/m`),
        v: tf.zerosLike(variable).variable(false, `${name}/v`),
      }));
      this.slots.set(name, slot);
    }
    return slot;
  }

  override dispose(): void {
    for (const { m, v } of this.slots.values()) tf.dispose([m, v]);
    this.slots.clear();
    super.dispose();
  }

  override async getWeights(): Promise<NamedTensor[]> {
    const moments = [...this.slots.values()].flatMap(({ m, v }) => [m, v].map((tensor) => ({ name: tensor.name, tensor })));
    return [await this.saveIterations(), ...moments];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const values = await this.extractIterations(weightValues);
    const byName = new Map(values.map(({ name, tensor }) => [name, tensor]));
    for (const [name] of Object.entries(tf.engine().registeredVariables)) {
      const m = byName.get(`${name}/m`);
      const v = byName.get(`${name}/v`);
      if (!m || !v) continue;
      this.slots.get(name)?.m.dispose();
      this.slots.get(name)?.v.dispose();
      this.slots.set(name, { m: m.variable(false, `${name}/m`), v: v.variable(false, `${name}/v`) });
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config.learningRate, config.beta1, config.beta2, config.epsilon);
  }
}
tf.serialization.registerClass(KerasAdam);

/** The tutorial's optimizer: Keras's Adam with learning rate `learningRate` (1e-3 by default). */
export function kerasAdam(learningRate = 1e-3): KerasAdam {
  return new KerasAdam(learningRate);
}
