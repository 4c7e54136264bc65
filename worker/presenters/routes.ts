/** @module CC v3 shapes of routes and destinations (http routes under one domain). */
import { type Destination, type Route, routeUrl } from "../db/routes";
import { emptyMetadata, type Linker } from "./links";

export function presentDestination(d: Destination) {
  return {
    guid: d.guid,
    app: { guid: d.appGuid, process: { type: d.processType } },
    weight: null,
    port: d.port,
    protocol: "http1",
  };
}

export function presentDestinations(route: Route, l: Linker) {
  return {
    destinations: route.destinations.map(presentDestination),
    links: { self: l(`/v3/routes/${route.guid}/destinations`), route: l(`/v3/routes/${route.guid}`) },
  };
}

export function presentRoute(route: Route, domainGuid: string, l: Linker) {
  return {
    guid: route.guid,
    protocol: "http",
    port: null,
    host: route.host,
    path: route.path,
    url: routeUrl(route),
    created_at: route.createdAt,
    updated_at: route.updatedAt,
    destinations: route.destinations.map(presentDestination),
    options: {},
    metadata: emptyMetadata(),
    relationships: {
      space: { data: { guid: route.spaceGuid } },
      domain: { data: { guid: domainGuid } },
    },
    links: {
      self: l(`/v3/routes/${route.guid}`),
      space: l(`/v3/spaces/${route.spaceGuid}`),
      domain: l(`/v3/domains/${domainGuid}`),
      destinations: l(`/v3/routes/${route.guid}/destinations`),
    },
  };
}

/**
 * Berth has one domain (APPS_DOMAIN) and no domains table; CC still names a
 * domain by guid, so it is a name-based UUID (v5, URL namespace) of the domain.
 */
export async function appsDomainGuid(domain: string): Promise<string> {
  const ns = "6ba7b8119dad11d180b400c04fd430c8"; // RFC 4122 URL namespace
  const bytes = new Uint8Array([...ns.match(/../g)!.map((h) => parseInt(h, 16)), ...new TextEncoder().encode(`domain:${domain}`)]);
  const h = new Uint8Array(await crypto.subtle.digest("SHA-1", bytes)).slice(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
