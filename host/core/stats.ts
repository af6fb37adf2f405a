/** Counters per outcome (ATS's proxy.process.*), readable in-process with `get(name)`. */
export class Stats {
  #c = new Map<string, number>();

  inc(name: string, by = 1): void {
    this.#c.set(name, (this.#c.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.#c.get(name) ?? 0;
  }
}
