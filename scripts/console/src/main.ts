import { renderAlbum } from "./album.js";
import { renderConsole, stopConsole } from "./console.js";
import "./style.css";

const view = document.getElementById("view")!;

function route(): void {
  const page = location.hash.startsWith("#/console") ? "console" : "album";
  for (const id of ["album", "console"]) {
    const link = document.getElementById(`nav-${id}`)!;
    if (id === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (page === "console") renderConsole(view);
  else {
    stopConsole();
    renderAlbum(view);
  }
}

window.addEventListener("hashchange", route);
route();
