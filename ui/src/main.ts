import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";
import { ipc } from "./ipc";

const target = document.getElementById("app");
if (target) {
  mount(App, { target });
  // Two frames: the first schedules layout, the second runs after it has been painted.
  requestAnimationFrame(() => requestAnimationFrame(() => void ipc.uiReady()));
}
