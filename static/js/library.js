// The clip library: a muted preview plays while the pointer rests on a clip, and the
// filters apply as soon as a choice changes. Without this file the poster stays and the
// Filter button submits the form.
(function () {
  "use strict";

  function stop(card) {
    var video = card.querySelector("video.hover-preview");
    if (video) {
      video.pause();
      video.remove();
    }
  }

  document.addEventListener("pointerover", function (event) {
    var card = event.target.closest && event.target.closest(".clip-card[data-preview]");
    if (!card || card.contains(event.relatedTarget)) return;
    var thumb = card.querySelector(".thumb");
    if (!thumb || thumb.querySelector("video")) return;
    var video = document.createElement("video");
    video.className = "hover-preview";
    video.muted = true;
    video.loop = true;
    video.playsInline = true;
    video.preload = "auto";
    video.src = card.dataset.preview;
    thumb.append(video);
    // play() is refused when the pointer leaves first; that is fine.
    video.play().catch(function () {});
  });

  document.addEventListener("pointerout", function (event) {
    var card = event.target.closest && event.target.closest(".clip-card[data-preview]");
    if (card && !card.contains(event.relatedTarget)) stop(card);
  });

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-autosubmit]");
    if (form && event.target.matches("select")) form.requestSubmit();
  });
})();
