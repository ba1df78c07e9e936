// anywidget ES module of the similar view.
import { renderSimilar } from "../similar.js";
import { widget } from "./_render.js";

export default widget(renderSimilar);
