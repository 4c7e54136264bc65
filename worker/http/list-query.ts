/** @module Query-string pieces shared by CC list endpoints. */
import { z } from "zod";
import { commaList } from "./validate";

/**
 * A `guids=a,b` / `names=a,b` filter. Capped so a filter always fits D1's
 * 100 bound parameters per statement with room for the rest of the query.
 */
export const filterList = commaList.pipe(z.array(z.string().min(1).max(255)).min(1, "must name at least one value").max(50));
