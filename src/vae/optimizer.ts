/**
 * Keras's Adam, the tutorial's optimizer (introduced in `notebooks/02-model.ipynb`): learning rate 1e-3,
 * beta1 0.9, beta2 0.999, epsilon 1e-7, with the bias corrections folded into the step size (float64 on
 * the host, once per step):
 *   t += 1;  alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *   m = m + (g - m) * (1 - beta1);  v = v + (g^2 - v) * (1 - beta2);  w = w - alpha * m / (sqrt(v) + epsilon)
 * `tf.train.adam` differs in where epsilon enters. A backend may update a weight array in one call
 * behind the hook (`src/vae/fastPath.ts`).
 */
import * as tf from "@tensorflow/tfjs";
import { fastPath } from "./fastPath";

/** A named tensor, as optimizers exchange weights (`NamedTensor` is not re-exported by tfjs). */
type NamedTensor = { name: string; tensor: tf.Tensor };

/** The scalars of one update: the step size of this step and the optimizer's constants. */
export interface KerasAdamAttrs {
  /** lr * sqrt(1 - beta2^t) / (1 - beta1^t) for step t (1-based). */
  readonly alpha: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/** The update composed from tf ops (12 element-wise ops): Keras's formula as written above. */
export function kerasAdamUpdateComposed(
  w: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  attrs: KerasAdamAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const { alpha, beta1, beta2, epsilon } = attrs;
  return tf.tidy(() => {
    const newM = tf.add(m, tf.mul(tf.sub(g, m), 1 - beta1));
    const newV = tf.add(v, tf.mul(tf.sub(tf.square(g), v), 1 - beta2));
    const newW = tf.sub(w, tf.div(tf.mul(newM, alpha), tf.add(tf.sqrt(newV), epsilon)));
    return [newW, newM, newV] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}

/** One update of one weight array: new [w, m, v] (the inputs are left as they are). */
export function kerasAdamUpdate(
  w: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  attrs: KerasAdamAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const fast = fastPath().kerasAdamUpdate?.(w, m, v, g, attrs);
  if (fast) {
    return fast;
  } else {
    return kerasAdamUpdateComposed(w, m, v, g, attrs);
  }
}

/** A weight array's first and second moments (`originalName` is `${variable}/m` or `/v`, as tfjs names them). */
interface Moments {
  m: { originalName: string; variable: tf.Variable };
  v: { originalName: string; variable: tf.Variable };
}

/**
 * Keras's Adam (see the module comment): `kerasAdam(lr)` is the tutorial's optimizer. Works like
 * `tf.train.adam` (`minimize`, `applyGradients` with a map or a `NamedTensor[]`, `getWeights` /
 * `setWeights` with the iteration count and the moments, `dispose`).
 */
export class KerasAdam extends tf.Optimizer {
  static readonly className = "KerasAdam";
  /** Moments per variable name, created as zeros the first time a variable gets a gradient. */
  private readonly moments = new Map<string, Moments>();

  constructor(
    readonly learningRate = 1e-3,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-7,
  ) {
    super();
    for (const [name, value] of Object.entries({ learningRate, beta1, beta2, epsilon })) {
      const isBeta = name.startsWith("beta");
      if (!Number.isFinite(value) || value <= 0 || (isBeta && value >= 1)) {
        throw new RangeError(`Adam ${name} must be a finite number > 0${isBeta ? " and < 1" : ""}; got ${value}.`);
      }
    }
  }

  /** The scalars of the next step (t = iterations + 1). */
  private stepAttrs(): KerasAdamAttrs {
    const t = this.iterations + 1;
    // Float64 on the host: one number per step, passed to every update.
    const alpha = (this.learningRate * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    return { alpha, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  /**
   * For a whole training step that applies this update itself (a backend's fast path): the next step's
   * scalars and each variable's moments (zeros on first use). The caller assigns the new weights and
   * moments, then calls `endStep`.
   */
  beginStep(variables: readonly tf.Variable[]): {
    attrs: KerasAdamAttrs;
    moments: { m: tf.Variable; v: tf.Variable }[];
  } {
    return {
      attrs: this.stepAttrs(),
      moments: variables.map((variable) => {
        const { m, v } = this.momentsOf(variable.name, variable);
        return { m: m.variable, v: v.variable };
      }),
    };
  }

  /** Counts a step whose update `beginStep` handed out. */
  endStep(): void {
    this.incrementIterations();
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const gradients: [string, tf.Tensor | null | undefined][] = Array.isArray(variableGradients)
      ? variableGradients.map(({ name, tensor }) => [name, tensor])
      : Object.entries(variableGradients);
    const attrs = this.stepAttrs();
    const registered = tf.engine().registeredVariables;
    tf.tidy(() => {
      for (const [name, gradient] of gradients) {
        if (gradient == null) continue;
        const variable = registered[name];
        if (!variable) throw new Error(`KerasAdam got a gradient for "${name}", which is not a registered variable.`);
        const { m, v } = this.momentsOf(name, variable);
        const [newW, newM, newV] = kerasAdamUpdate(variable, m.variable, v.variable, gradient, attrs);
        variable.assign(newW);
        m.variable.assign(newM);
        v.variable.assign(newV);
      }
    });
    this.incrementIterations();
  }

  private momentsOf(name: string, variable: tf.Variable): Moments {
    let moments = this.moments.get(name);
    if (!moments) {
      // Unnamed optimizer variables (a name must be unique in the engine, and several optimizers may
      // train the same weights); the canonical name is `originalName`.
      moments = tf.tidy(() => ({
        m: { originalName: `${name}/m`, variable: tf.zerosLike(variable).variable(false) },
        v: { originalName: `${name}/v`, variable: tf.zerosLike(variable).variable(false) },
      }));
      this.moments.set(name, moments);
    } else if (moments.m.variable.size !== variable.size || moments.v.variable.size !== variable.size) {
      throw new Error(
        `KerasAdam's moments for "${name}" have shape [${moments.m.variable.shape}], the variable [${variable.shape}].`,
      );
    }
    return moments;
  }

  override dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m.variable, v.variable]);
    this.moments.clear();
    super.dispose();
  }

  /**
   * The iteration count (`iter`), then every first moment, then every second moment, as `tf.train.adam`
   * orders them. The tensors are the optimizer's own: clone them to keep them past the next step.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const moments = [...this.moments.values()];
    const named = (x: { originalName: string; variable: tf.Variable }): NamedTensor => ({
      name: x.originalName,
      tensor: x.variable,
    });
    return [await this.saveIterations(), ...moments.map(({ m }) => named(m)), ...moments.map(({ v }) => named(v))];
  }

  /**
   * Restores what `getWeights` returned (also `tf.train.adam`'s weights, which are named and ordered
   * the same way). Moments are matched to variables by name (`${variable}/m`, `${variable}/v`); the
   * given tensors are not disposed and may be disposed by the caller.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const values = await this.extractIterations(weightValues);
    if (values.length % 2 !== 0)
      throw new Error(`KerasAdam.setWeights expects as many first as second moments; got ${values.length} tensors.`);
    const half = values.length / 2;
    const firsts = values.slice(0, half);
    const seconds = values.slice(half);
    const restored = new Map<string, Moments>();
    firsts.forEach((first, i) => {
      const second = seconds[i];
      const name = first.name.endsWith("/m") ? first.name.slice(0, -2) : undefined;
      if (name === undefined || second.name !== `${name}/v`) {
        throw new Error(
          'KerasAdam.setWeights expects moments named "<variable>/m" and "<variable>/v" in matching order; ' +
            `got "${first.name}" and "${second.name}".`,
        );
      }
      restored.set(name, {
        m: { originalName: first.name, variable: first.tensor.variable(false) },
        v: { originalName: second.name, variable: second.tensor.variable(false) },
      });
    });
    for (const [name, moments] of restored) {
      const old = this.moments.get(name);
      if (old) tf.dispose([old.m.variable, old.v.variable]);
      this.moments.set(name, moments);
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config.learningRate, config.beta1, config.beta2, config.epsilon);
  }
}
tf.serialization.registerClass(KerasAdam);

/**
 * Whether `optimizer` is a `KerasAdam`. (`instanceof` does not tell: tfjs's `Optimizer` answers it for
 * every object with `minimize`, `computeGradients` and `applyGradients`, `tf.train.adam` included.)
 */
export function isKerasAdam(optimizer: tf.Optimizer): optimizer is KerasAdam {
  return Object.getPrototypeOf(optimizer) === KerasAdam.prototype;
}

/** The tutorial's optimizer: Keras's Adam with learning rate `learningRate` (1e-3 by default). */
export function kerasAdam(learningRate = 1e-3): KerasAdam {
  return new KerasAdam(learningRate);
}
