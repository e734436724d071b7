/**
 * The byte budget of a page (records, changes): a page of 100 records of 1 MiB held the event
 * loop for seconds to parse and serialise, and a page of 1,000 changes of such records was 1 GB.
 * Listings select data up to INLINE_DATA_BYTES with their rows and the rest apart, by key, only
 * for the rows the budget lets in.
 */
/** Data up to this size comes with the page's rows; larger data only when the page includes it. */
export const INLINE_DATA_BYTES = 64 * 1024;
/** The data a page carries at most (its first record always, whatever its size). */
export const PAGE_DATA_BYTES = 4 * 1024 * 1024;

/**
 * The rows of a page whose data fits the byte budget, in order, the first always, at most
 * `limit`; `cut` when the budget left out rows of the page.
 */
export function pageWithinBudget<R extends { readonly _len: unknown }>(rows: readonly R[], limit: number): { readonly page: R[]; readonly cut: boolean } {
  const page: R[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, limit)) {
    const size = Number(row._len);
    if (page.length > 0 && bytes + size > PAGE_DATA_BYTES) return { page, cut: true };
    bytes += size;
    page.push(row);
  }
  return { page, cut: false };
}

