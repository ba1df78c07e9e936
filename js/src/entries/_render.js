// anywidget entry helper: one store per rendered view, torn down when the view is removed.
import { ensureStyles } from "../dom.js";
import { createStore } from "../store.js";

export function widget(renderView) {
  return {
    render({ model, el }) {
      ensureStyles(el);
      el.classList.add("mw-root");
      const store = createStore(model);
      const view = renderView(store, el);
      return () => {
        view.destroy();
        store.destroy();
      };
    },
  };
}
