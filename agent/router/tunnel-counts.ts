/**
 * @module Upgraded connections open per route in this process, capped so one
 * app's clients cannot take every file descriptor of the router (each tunnel
 * holds two: the client's and the instance's).
 */
export class TunnelCounts {
  readonly #open = new Map<string, number>();

  constructor(private readonly maxPerRoute: number) {}

  /** Counts a tunnel for `route`, or returns false when the route already has its maximum. */
  tryOpen(route: string): boolean {
    const open = this.#open.get(route) ?? 0;
    if (open >= this.maxPerRoute) return false;
    this.#open.set(route, open + 1);
    return true;
  }

  close(route: string): void {
    const open = this.#open.get(route) ?? 0;
    if (open <= 1) this.#open.delete(route);
    else this.#open.set(route, open - 1);
  }
}
