// The new-clip form's frame slots: drag and drop, previews, and reordering of reference
// images. Progressive enhancement only: without this file each slot is a plain file input
// and a text box, and the server checks everything either way.
(function () {
  "use strict";

  function zoneOf(element) {
    return element.closest("[data-dropzone]");
  }

  function fileInput(zone) {
    return zone.querySelector("input[type=file]");
  }

  // Browsers only let a script set input.files from a DataTransfer's list.
  function setFiles(input, files) {
    var transfer = new DataTransfer();
    files.forEach(function (file) { transfer.items.add(file); });
    input.files = transfer.files;
  }

  function button(label, title, action, index) {
    var element = document.createElement("button");
    element.type = "button";
    element.className = "preview-button";
    element.textContent = label;
    element.title = title;
    element.setAttribute("aria-label", title);
    element.dataset.action = action;
    element.dataset.index = String(index);
    return element;
  }

  // What the studio takes (frames.py checks again by content): JPEG, PNG, WebP, 10 MB.
  var TYPES = ["image/jpeg", "image/png", "image/webp"];
  var MAX_BYTES = 10 * 1024 * 1024;
  var REFUSED_TYPE = "not a JPEG, PNG or WebP image";

  // "reference-shot-left.png" and "reference-shot-right.png" must not both read
  // "reference-sh…": keep the start and the end, where names differ.
  function shortName(name, room) {
    if (name.length <= room) return name;
    // Names that differ tend to differ near the end ("-left.png", "-right.png").
    var head = Math.max(2, Math.floor((room - 1) / 3));
    return name.slice(0, head) + "…" + name.slice(name.length - (room - 1 - head));
  }

  function refusal(file) {
    if (TYPES.indexOf(file.type) < 0) return REFUSED_TYPE;
    if (file.size > MAX_BYTES) return "larger than 10 MB";
    return "";
  }

  function refusedItem(name, why) {
    var item = document.createElement("li");
    item.className = "preview refused";
    item.setAttribute("role", "alert");
    var caption = document.createElement("span");
    caption.className = "preview-refusal";
    caption.title = name;
    caption.textContent = shortName(name, 22) + ": " + why + ". Not added.";
    item.append(caption);
    return item;
  }

  // Files the slot cannot take are left out of the input and said so, not shown broken.
  function accept(zone, files) {
    var refused = [];
    var kept = files.filter(function (file) {
      var why = refusal(file);
      if (why) refused.push([file.name, why]);
      return !why;
    });
    zone.refused = refused;
    return kept;
  }

  function dropBroken(zone, file) {
    var input = fileInput(zone);
    var files = Array.prototype.slice.call(input.files).filter(function (f) { return f !== file; });
    setFiles(input, files);
    zone.refused = (zone.refused || []).concat([[file.name, "not an image this browser can read"]]);
    render(zone);
  }

  function render(zone) {
    var input = fileInput(zone);
    var list = zone.querySelector("[data-previews]");
    if (!input || !list) return;
    list.querySelectorAll("img").forEach(function (img) { URL.revokeObjectURL(img.src); });
    list.textContent = "";
    var files = Array.prototype.slice.call(input.files || []);
    files.forEach(function (file, index) {
      var item = document.createElement("li");
      item.className = "preview";
      var img = document.createElement("img");
      img.alt = file.name;
      img.addEventListener("error", function () { dropBroken(zone, file); }, { once: true });
      img.src = URL.createObjectURL(file);
      var caption = document.createElement("span");
      caption.className = "preview-name";
      caption.title = file.name;
      // What fits under a 96 px preview, the number included.
      caption.textContent = input.multiple
        ? index + 1 + ". " + shortName(file.name, 11)
        : shortName(file.name, 14);
      item.append(img, caption);
      if (input.multiple && files.length > 1) {
        var controls = document.createElement("span");
        controls.className = "preview-controls";
        if (index > 0) controls.append(button("←", "Move earlier", "earlier", index));
        if (index < files.length - 1) controls.append(button("→", "Move later", "later", index));
        item.append(controls);
      }
      item.append(button("×", "Remove " + file.name, "remove", index));
      list.append(item);
    });
    (zone.refused || []).forEach(function (pair) { list.append(refusedItem(pair[0], pair[1])); });
    zone.classList.toggle("has-files", files.length > 0);
    var link = zone.querySelector("input[type=text], textarea");
    if (link && !input.multiple) link.disabled = files.length > 0;
  }

  document.addEventListener("change", function (event) {
    var zone = event.target.matches && event.target.matches("input[type=file]") && zoneOf(event.target);
    if (!zone) return;
    var chosen = Array.prototype.slice.call(event.target.files || []);
    var kept = accept(zone, chosen);
    if (kept.length !== chosen.length) setFiles(event.target, kept);
    render(zone);
  });

  document.addEventListener("click", function (event) {
    var control = event.target.closest(".preview-button");
    if (!control || !control.dataset.index) return;
    var zone = zoneOf(control);
    zone.refused = [];
    var input = fileInput(zone);
    var files = Array.prototype.slice.call(input.files);
    var index = Number(control.dataset.index);
    var action = control.dataset.action;
    if (action === "remove") files.splice(index, 1);
    var other = action === "earlier" ? index - 1 : action === "later" ? index + 1 : -1;
    if (other >= 0) files.splice(other, 0, files.splice(index, 1)[0]);
    setFiles(input, files);
    render(zone);
  });

  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var zone = event.target.closest && zoneOf(event.target);
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });

  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && zoneOf(event.target);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });

  document.addEventListener("drop", function (event) {
    var zone = event.target.closest && zoneOf(event.target);
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    var input = fileInput(zone);
    var dropped = Array.prototype.slice.call(event.dataTransfer.files || []);
    if (!dropped.length) return;
    dropped = accept(zone, dropped);
    var files = input.multiple
      ? Array.prototype.slice.call(input.files).concat(dropped)
      : dropped.slice(0, 1);
    var max = Number(zone.dataset.max || 0);
    if (max) files = files.slice(0, max);
    setFiles(input, files);
    render(zone);
  });

  // A pasted link or data: URI gets a preview too, so a wrong paste shows at once. A data:
  // URI is a wall of Base64: its box is folded away behind a chip (the value still goes
  // with the form) until "Change" opens it again.
  function dataUriSummary(value) {
    var match = /^data:image\/([a-z0-9.+-]+);base64,/i.exec(value);
    var kind = match ? match[1].toUpperCase() : "image";
    var bytes = Math.round(((value.length - value.indexOf(",") - 1) * 3) / 4);
    var size = bytes > 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB";
    return "Pasted " + kind + " image · " + size;
  }

  function showLink(field) {
    var zone = zoneOf(field);
    if (!zone) return;
    var value = field.value.trim();
    var preview = zone.querySelector(".link-preview");
    var chip = zone.querySelector(".link-chip");
    if (chip) chip.remove();
    field.classList.remove("is-data-uri");
    if (!/^(https?:|data:image\/)/i.test(value)) {
      if (preview) preview.remove();
      return;
    }
    if (/^data:/i.test(value)) {
      if (preview) preview.remove();
      chip = document.createElement("div");
      chip.className = "link-chip";
      var img = document.createElement("img");
      img.alt = "Preview of the pasted image";
      var text = document.createElement("span");
      text.textContent = dataUriSummary(value);
      img.addEventListener("error", function () {
        img.remove();
        text.textContent = "The pasted data: URI is not an image this browser can read; it will be refused.";
        chip.setAttribute("role", "alert");
      }, { once: true });
      img.src = value;
      var change = document.createElement("button");
      change.type = "button";
      change.className = "preview-button";
      change.textContent = "Change";
      change.dataset.linkChange = "1";
      chip.append(img, text, change);
      field.classList.add("is-data-uri");
      field.after(chip);
      return;
    }
    if (!preview) {
      preview = document.createElement("img");
      preview.className = "link-preview";
      preview.alt = "Preview of the pasted image";
      preview.addEventListener("error", function () { preview.remove(); });
      field.after(preview);
    }
    preview.src = value;
  }

  function isLink(field) {
    return field.matches && field.matches("input[type=text]") && zoneOf(field);
  }

  document.addEventListener("input", function (event) {
    if (isLink(event.target)) showLink(event.target);
  });

  document.addEventListener("click", function (event) {
    var change = event.target.closest && event.target.closest("[data-link-change]");
    if (!change) return;
    var field = zoneOf(change).querySelector("input[type=text]");
    field.value = "";
    showLink(field);
    field.focus();
  });

  // Values the server sent back (a refused form) get their preview or chip at once.
  function showAll() {
    document.querySelectorAll("[data-dropzone] input[type=text]").forEach(showLink);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showAll);
  else showAll();
})();
