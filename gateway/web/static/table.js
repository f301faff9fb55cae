// The page size the web page asks for where the reader does not choose one (the users table, the
// dashboard's rows), and assumes when a catalog URL names none: the API's default.
export const PAGE_SIZE = 20;

// The rows of a table of catalog items, for the browse table and the dashboard's: one row per item,
// its key on the row, one cell per column (empty for null; a long value also in the cell's title).
export function itemRows(items, columns, key) {
  return items.map((item) => {
    const row = document.createElement("tr");
    row.dataset.id = key && item[key] !== undefined ? item[key] : item.id;
    for (const column of columns) {
      const td = document.createElement("td");
      const value = item[column];
      td.textContent = value === null || value === undefined ? "" : String(value);
      if (td.textContent.length > 60) td.title = td.textContent;
      row.append(td);
    }
    return row;
  });
}
