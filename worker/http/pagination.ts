/** @module CC v3 list envelope: `{pagination:{total_results,total_pages,first,last,next,previous}, resources}`. */

export interface PageRequest {
  page: number;
  per_page: number;
}

export function paginated<T>(url: string, req: PageRequest, total: number, resources: T[]) {
  const totalPages = Math.max(1, Math.ceil(total / req.per_page));
  const href = (page: number) => {
    const u = new URL(url);
    u.searchParams.set("page", String(page));
    u.searchParams.set("per_page", String(req.per_page));
    return { href: u.toString() };
  };
  return {
    pagination: {
      total_results: total,
      total_pages: totalPages,
      first: href(1),
      last: href(totalPages),
      next: req.page < totalPages ? href(req.page + 1) : null,
      previous: req.page > 1 ? href(Math.min(req.page - 1, totalPages)) : null,
    },
    resources,
  };
}

/** Slices an in-memory list (for small fixed lists such as feature flags). */
export function pageOf<T>(items: T[], req: PageRequest): T[] {
  const start = (req.page - 1) * req.per_page;
  return items.slice(start, start + req.per_page);
}
