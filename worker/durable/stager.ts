import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env";

export class Stager extends DurableObject<Bindings> {
  override async fetch(_request: Request): Promise<Response> {
    return new Response(null, { status: 204 });
  }
}
