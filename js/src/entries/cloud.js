// anywidget ES module of the cloud view.
import { renderCloud } from "../cloud.js";
import { widget } from "./_render.js";

export default widget(renderCloud);
