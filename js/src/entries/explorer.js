// anywidget ES module of the explorer view.
import { renderExplorer } from "../explorer.js";
import { widget } from "./_render.js";

export default widget(renderExplorer);
