import{c as e,j as t}from"./client-DOSV_kvz.js";e.createRoot(document.getElementById("app")).render(t.jsx("h1",{children:"BeatStream"}));
