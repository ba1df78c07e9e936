// anywidget ES module of the grid view.
import { renderGrid } from "../grid.js";
import { widget } from "./_render.js";

export default widget(renderGrid);
