// How the operations console's list panels (AML cases, the KYC queue, withdrawals waiting for
// approval, custody alerts) load and act alike: ask the operator API for the list; a panel this
// role may not see (or a part this server does not run) is rethrown for console.ts to hide; any
// other error empties the table and says why in the panel's message (`<table id>-msg`); rows
// are tagged with their item's id; a row action's answer or error goes to that message and
// the panel redraws; nothing is redrawn under someone typing in a row.
import { ApiError, describe } from "./api";
import { $, rows, say } from "./dom";

/** A panel this console hides rather than shows an error in: not this role's (403), or a part
 * this server does not run (404 CUSTODY_DISABLED / AML_DISABLED). */
export function hides(exc: unknown): boolean {
  return (
    exc instanceof ApiError &&
    (exc.status === 403 || (exc.status === 404 && String(exc.code).endsWith("_DISABLED")))
  );
}

/** Not this role's (403): the only refusal a panel of a part every server runs hides on. */
export function forbidden(exc: unknown): boolean {
  return exc instanceof ApiError && exc.status === 403;
}

/** The list, or null when asking failed for a reason the panel shows (its table emptied). */
export async function fetchList<T>(
  table: string,
  fetch: () => Promise<T[]>,
  hidden: (exc: unknown) => boolean = hides,
): Promise<T[] | null> {
  try {
    return await fetch();
  } catch (exc) {
    if (hidden(exc)) throw exc;
    $(table).replaceChildren();
    say($(`${table}-msg`), describe(exc));
    return null;
  }
}

/** Draw one row an item (or `empty`), each <tr> tagged by `tag` (the tests find rows by it). */
export function drawList<T>(
  table: string,
  list: T[],
  row: (item: T) => (Node | string)[],
  empty: string,
  tag: (tr: HTMLElement, item: T) => void = () => undefined,
): void {
  rows($(table), list.map(row), empty);
  for (const [i, tr] of [...$(table).querySelectorAll("tr")].entries()) {
    if (list[i]) tag(tr, list[i]);
  }
}

/** One row action: its answer ("ok") or its error in `msg`, then `reload`. */
export async function act(msg: HTMLElement, call: () => Promise<string>, reload: () => Promise<void>): Promise<void> {
  try {
    say(msg, await call(), "ok");
  } catch (exc) {
    say(msg, describe(exc), "error");
  }
  await reload();
}

/** A list panel whose rows have inputs: while one has focus the poll does not redraw. */
export abstract class EditableList {
  protected busy = false;

  /** Hold redraws from the moment one of `inputs` takes focus until the next row action. */
  protected holdWhileEditing(...inputs: HTMLElement[]): void {
    for (const e of inputs) e.addEventListener("focus", () => (this.busy = true));
  }

  /** A row action (see `act`) that ends the hold first, so its reload redraws. */
  protected act(msg: HTMLElement, call: () => Promise<string>, reload: () => Promise<void>): Promise<void> {
    return act(msg, call, () => {
      this.busy = false;
      return reload();
    });
  }
}
