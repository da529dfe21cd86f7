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
      img.src = URL.createObjectURL(file);
      var caption = document.createElement("span");
      caption.className = "preview-name";
      caption.textContent = (input.multiple ? index + 1 + ". " : "") + file.name;
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
    zone.classList.toggle("has-files", files.length > 0);
    var link = zone.querySelector("input[type=text], textarea");
    if (link && !input.multiple) link.disabled = files.length > 0;
  }

  document.addEventListener("change", function (event) {
    var zone = event.target.matches && event.target.matches("input[type=file]") && zoneOf(event.target);
    if (zone) render(zone);
  });

  document.addEventListener("click", function (event) {
    var control = event.target.closest(".preview-button");
    if (!control) return;
    var zone = zoneOf(control);
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
    var files = input.multiple
      ? Array.prototype.slice.call(input.files).concat(dropped)
      : dropped.slice(0, 1);
    var max = Number(zone.dataset.max || 0);
    if (max) files = files.slice(0, max);
    setFiles(input, files);
    render(zone);
  });

  // A pasted link or data: URI gets a preview too, so a wrong paste shows at once.
  document.addEventListener("input", function (event) {
    var field = event.target;
    var zone = field.matches && field.matches("input[type=text]") && zoneOf(field);
    if (!zone) return;
    var preview = zone.querySelector(".link-preview");
    var value = field.value.trim();
    if (!/^(https?:|data:image\/)/i.test(value)) {
      if (preview) preview.remove();
      return;
    }
    if (!preview) {
      preview = document.createElement("img");
      preview.className = "link-preview";
      preview.alt = "Preview of the pasted image";
      field.after(preview);
    }
    preview.src = value;
  });
})();
