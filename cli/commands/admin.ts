/** @module Admin commands: create-user, create-space, cells, enrollment-token, register-router, drain-cell, delete-cell, registry-access. */
import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { integer } from "../../shared/flags";
import { PROTOCOL_VERSION } from "../../shared/protocol/version";
import { UsageError, type Ctx } from "../context";
import type { Action } from "../main";
import { formatMegabytes } from "../units";

interface RegistryAccess {
  trusted_ca_certificates: string[];
  insecure_registries: string[];
  cell_only_registries: string[];
  version: number;
}

interface Cell {
  guid: string;
  name: string;
  state: string;
}

/** A cell by guid, or by name when only one cell has it (names repeat once a host enrolls again). */
async function cellByRef(ctx: Ctx, ref: string): Promise<Cell> {
  const cells = await ctx.api().all<Cell>("/v3/cells");
  const byGuid = cells.find((c) => c.guid === ref);
  if (byGuid) return byGuid;
  const named = cells.filter((c) => c.name === ref);
  if (named.length === 1) return named[0]!;
  if (named.length === 0) throw new UsageError(`Cell '${ref}' not found.`);
  throw new UsageError(`${named.length} cells are named '${ref}' (${named.map((c) => `${c.guid} ${c.state}`).join(", ")}): name one by its guid.`);
}

function showRegistryAccess(ctx: Ctx, ra: RegistryAccess) {
  ctx.out.say(`version: ${ra.version}\n`);
  ctx.out.say(`trusted CA certificates: ${ra.trusted_ca_certificates.length}`);
  ra.trusted_ca_certificates.forEach((pem, i) => ctx.out.say(`  #${i}  ${pem.split("\n")[1]?.slice(0, 40) ?? ""}...`));
  ctx.out.say(`insecure registries:     ${ra.insecure_registries.join(", ") || "(none)"}`);
  ctx.out.say(`cell-only registries:    ${ra.cell_only_registries.join(", ") || "(none)"}`);
  ctx.out.data(ra);
}

export function registerAdmin(program: Command, action: Action) {
  program
    .command("create-user <name>")
    .description("Create a user and print its token (shown once)")
    .action(action(async (ctx, name: string) => {
      const user = await ctx.api().post<{ guid: string; name: string; token: string }>("/v3/users", { name });
      ctx.out.say(`Creating user ${name}...\nOK\n\ntoken: ${user.token}\nThe token is shown only once; give it to ${name} for 'berth login' (it prompts for the token).`);
      ctx.out.data(user);
    }));

  program
    .command("create-space <name>")
    .description("Create a space in the targeted organization (the default one when none is targeted)")
    .action(action(async (ctx, name: string) => {
      const org = ctx.config.org;
      const space = await ctx.api().post<{ guid: string; name: string }>("/v3/spaces", { name, ...(org ? { relationships: { organization: { data: { guid: org.guid } } } } : {}) });
      ctx.out.say(`Creating space ${name}...\nOK\n\nTIP: Use 'berth target -s ${name}' to target it.`);
      ctx.out.data(space);
    }));

  program
    .command("cells")
    .description("List cells with their capacity and state")
    .action(action(async (ctx) => {
      ctx.out.say("Getting cells...\n");
      const cells = await ctx.api().all<any>("/v3/cells");
      ctx.out.table(
        ["name", "guid", "zone", "address", "state", "memory free/total", "containers free/total", "last heartbeat"],
        cells.map((c) => [
          c.name, c.guid, c.zone, c.address, c.state,
          `${c.free ? formatMegabytes(c.free.memory_mb) : "?"}/${formatMegabytes(c.capacity.memory_mb)}`,
          `${c.free?.containers ?? "?"}/${c.capacity.containers}`,
          c.last_heartbeat_at ?? "never",
        ]),
      );
      ctx.out.data(cells);
    }));

  program
    .command("enrollment-token <kind>")
    .description("Print a one-time token that enrolls one cell or router within its TTL (kind: cell or router; shown once)")
    .action(action(async (ctx, kind: string) => {
      if (kind !== "cell" && kind !== "router") throw new UsageError(`Unknown kind '${kind}': cell or router`);
      const t = await ctx.api().post<{ guid: string; token: string; expires_at: string }>("/v3/cells/enrollment_tokens", { kind });
      // The token alone on stdout, so it can go straight into a file or variable.
      ctx.out.say(t.token);
      ctx.out.data(t);
    }));

  program
    .command("register-router <name>")
    .description("Enroll a router with an enrollment token and print its credential, shown once (for /etc/berth/router-token)")
    .requiredOption("-t, --enrollment-token <token>", "from 'berth enrollment-token router'")
    .action(action(async (ctx, name: string, opts: { enrollmentToken: string }) => {
      if (!ctx.config.api) throw new UsageError("No API endpoint set: run 'berth api URL' first.");
      const reg = await ctx
        .anonymousApi(ctx.config.api, ctx.config.skipTlsValidation)
        .post<{ guid: string; credential: string }>("/v3/cells/register", { protocol: PROTOCOL_VERSION, enrollment_token: opts.enrollmentToken, name });
      // The credential alone on stdout: berth register-router r1 -t … > /etc/berth/router-token
      ctx.out.say(reg.credential);
      ctx.out.data(reg);
    }));

  program
    .command("drain-cell <cell>")
    .description("Move a cell's instances elsewhere, each kept serving until its replacement runs (name or guid)")
    .action(action(async (ctx, ref: string) => {
      const cell = await cellByRef(ctx, ref);
      const drained = await ctx.api().post<Cell>(`/v3/cells/${cell.guid}/actions/drain`);
      ctx.out.say(`Draining cell ${cell.name} (${cell.guid})...\nOK\n\nTIP: once 'berth cells' shows all its containers free, stop its agent, run its teardown and 'berth delete-cell ${cell.guid}'.`);
      ctx.out.data(drained);
    }));

  program
    .command("delete-cell <cell>")
    .description("Forget a cell that no longer heartbeats (name or guid); its agent would have to enroll again")
    .action(action(async (ctx, ref: string) => {
      const cell = await cellByRef(ctx, ref);
      await ctx.api().delete(`/v3/cells/${cell.guid}`);
      ctx.out.say(`Deleting cell ${cell.name} (${cell.guid})...\nOK`);
      ctx.out.data({ guid: cell.guid, name: cell.name });
    }));

  const ra = program.command("registry-access").description("Docker registry access (admin): CAs, insecure and cell-only registries");
  const get = (ctx: Ctx) => ctx.api().get<RegistryAccess>("/v3/admin/docker_registry_access");
  const patch = async (ctx: Ctx, edit: (r: RegistryAccess) => Partial<RegistryAccess>) => {
    const current = await get(ctx);
    const next = await ctx.api().patch<RegistryAccess>("/v3/admin/docker_registry_access", edit(current));
    ctx.out.say("OK\n");
    showRegistryAccess(ctx, next);
  };
  const without = (list: string[], item: string) => list.filter((x) => x !== item);
  const withItem = (list: string[], item: string) => (list.includes(item) ? list : [...list, item]);

  ra.command("list").description("Show registry access").action(action(async (ctx) => showRegistryAccess(ctx, await get(ctx))));
  ra.command("add-ca <pem-file>").description("Trust a CA certificate (PEM file)").action(action(async (ctx, file: string) => {
    const pem = (await readFile(file, "utf8")).trim();
    await patch(ctx, (r) => ({ trusted_ca_certificates: withItem(r.trusted_ca_certificates, pem) }));
  }));
  ra.command("remove-ca").argument("<index>", "the CA's index (see list)", integer).description("Stop trusting the CA at INDEX (see list)").action(action(async (ctx, i: number) => {
    await patch(ctx, (r) => {
      if (i >= r.trusted_ca_certificates.length) throw new UsageError(`No CA certificate #${i}`);
      return { trusted_ca_certificates: r.trusted_ca_certificates.filter((_, j) => j !== i) };
    });
  }));
  ra.command("allow-insecure <registry>").description("Allow plain HTTP or unverified TLS for host:port, IP or CIDR").action(action(async (ctx, reg: string) => {
    await patch(ctx, (r) => ({ insecure_registries: withItem(r.insecure_registries, reg) }));
  }));
  ra.command("cell-only <registry>").description("Resolve images of host:port on cells only").action(action(async (ctx, reg: string) => {
    await patch(ctx, (r) => ({ cell_only_registries: withItem(r.cell_only_registries, reg) }));
  }));
  ra.command("disallow <registry>").description("Remove a registry from the insecure and cell-only lists").action(action(async (ctx, reg: string) => {
    await patch(ctx, (r) => ({ insecure_registries: without(r.insecure_registries, reg), cell_only_registries: without(r.cell_only_registries, reg) }));
  }));
}
