/** @module What every CC list query carries besides its filters: who lists, and which page. */
import type { Viewer } from "./roles";

export interface Listing {
  /** Who lists: a developer sees only their spaces. */
  viewer: Viewer;
  page: number;
  perPage: number;
}
