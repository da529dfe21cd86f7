// Chain playback and timecoded comments. Plain JavaScript, no build step.
//
// The chain player plays the main line's segments one after another with two <video>
// elements: while one plays, the other has the next segment loaded and parked at the point
// where its new footage starts, so the swap at the end of a segment is immediate. Providers
// that return the whole extended video would otherwise repeat footage: each segment plays
// only from its `start` (Clip.new_from_seconds) to its end.
//
// Comments: the timecode field takes the player's current time when you start writing,
// and a comment's timecode seeks the player. Works on the chain page (#chain-player) and on
// a clip page (its <video>). Without JavaScript the timecode is typed, and a timecode link
// opens the video at that time.
(function () {
  "use strict";

  const EDGE = 0.04; // seconds before a segment's end at which the next one takes over

  function clockText(seconds) {
    const s = Math.max(0, seconds || 0);
    const minutes = Math.floor(s / 60);
    const rest = s - minutes * 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest.toFixed(1);
  }

  function ChainPlayer(root, segments) {
    this.root = root;
    this.segments = segments;
    const last = segments[segments.length - 1];
    this.total = last ? last.offset + last.length : 0;
    this.screens = Array.from(root.querySelectorAll("video.screen"));
    this.active = 0; // which screen is shown
    this.index = 0; // which segment the shown screen plays
    this.loaded = [null, null]; // segment index loaded in each screen
    this.wantsPlay = false;
    this.button = root.querySelector("[data-action=play]");
    this.scrubber = root.querySelector(".scrubber");
    this.clock = root.querySelector("[data-clock]");
    this.ticks = Array.from(root.querySelectorAll(".ticks li"));
    this.scrubbing = false;
    this.bind();
    this.load(0, 0, 0).then(() => this.prepareNext());
    this.render();
  }

  ChainPlayer.prototype.video = function () {
    return this.screens[this.active];
  };

  ChainPlayer.prototype.spare = function () {
    return this.screens[1 - this.active];
  };

  // Load segment `index` into screen `screen`, parked `at` seconds into its new footage.
  ChainPlayer.prototype.load = function (screen, index, at) {
    const video = this.screens[screen];
    const segment = this.segments[index];
    const target = segment.start + Math.max(0, Math.min(at, segment.length - EDGE));
    this.loaded[screen] = index;
    return new Promise((resolve) => {
      const park = () => {
        if (Math.abs(video.currentTime - target) < 0.01) {
          resolve();
          return;
        }
        video.addEventListener("seeked", () => resolve(), { once: true });
        video.currentTime = target;
      };
      if (video.getAttribute("src") !== segment.src) {
        video.setAttribute("src", segment.src);
        video.preload = "auto";
        if (segment.poster) video.poster = segment.poster;
        video.addEventListener("loadedmetadata", park, { once: true });
        video.load();
      } else if (video.readyState >= 1) {
        park();
      } else {
        video.addEventListener("loadedmetadata", park, { once: true });
      }
    });
  };

  ChainPlayer.prototype.prepareNext = function () {
    const next = this.index + 1;
    if (next < this.segments.length && this.loaded[1 - this.active] !== next) {
      return this.load(1 - this.active, next, 0);
    }
    return Promise.resolve();
  };

  ChainPlayer.prototype.show = function (screen) {
    this.active = screen;
    this.screens.forEach((video, n) => {
      video.classList.toggle("is-active", n === screen);
      video.setAttribute("aria-hidden", n === screen ? "false" : "true");
    });
  };

  ChainPlayer.prototype.currentTime = function () {
    const segment = this.segments[this.index];
    if (!segment) return 0;
    const into = this.video().currentTime - segment.start;
    return Math.min(this.total, segment.offset + Math.max(0, Math.min(into, segment.length)));
  };

  ChainPlayer.prototype.segmentAt = function (time) {
    for (let n = 0; n < this.segments.length; n++) {
      const segment = this.segments[n];
      if (time < segment.offset + segment.length) return n;
    }
    return this.segments.length - 1;
  };

  ChainPlayer.prototype.seek = function (time) {
    const t = Math.max(0, Math.min(time, this.total));
    const index = this.segmentAt(t);
    const at = t - this.segments[index].offset;
    const resume = this.wantsPlay;
    let ready;
    if (index === this.index && this.loaded[this.active] === index) {
      ready = this.load(this.active, index, at);
    } else if (this.loaded[1 - this.active] === index) {
      this.video().pause();
      this.show(1 - this.active);
      this.index = index;
      ready = this.load(this.active, index, at);
    } else {
      this.video().pause();
      this.index = index;
      ready = this.load(this.active, index, at);
    }
    this.announce();
    return ready.then(() => {
      if (resume) this.video().play().catch(() => {});
      this.render();
      return this.prepareNext();
    });
  };

  ChainPlayer.prototype.advance = function () {
    const next = this.index + 1;
    if (next >= this.segments.length) {
      this.wantsPlay = false;
      this.video().pause();
      this.render();
      return;
    }
    const old = this.video();
    if (this.loaded[1 - this.active] === next) {
      this.show(1 - this.active);
      this.index = next;
      this.video().play().catch(() => {});
      old.pause();
      this.announce();
      this.prepareNext();
    } else {
      // The next segment was not ready (a very short segment, a slow network): load it here.
      this.index = next;
      this.load(this.active, next, 0).then(() => {
        if (this.wantsPlay) this.video().play().catch(() => {});
        this.announce();
        this.prepareNext();
      });
    }
  };

  ChainPlayer.prototype.play = function () {
    this.wantsPlay = true;
    if (this.currentTime() >= this.total - EDGE) {
      this.seek(0);
      return;
    }
    this.video().play().catch(() => {});
    this.tick();
  };

  ChainPlayer.prototype.pause = function () {
    this.wantsPlay = false;
    this.screens.forEach((video) => video.pause());
    this.render();
  };

  // While playing, watch the time closely (timeupdate fires only about 4 times a second).
  ChainPlayer.prototype.tick = function () {
    if (this.ticking) return;
    this.ticking = true;
    const step = () => {
      const video = this.video();
      const segment = this.segments[this.index];
      if (this.wantsPlay && segment && !video.paused && video.currentTime >= segment.end - EDGE) {
        this.advance();
      }
      this.render();
      if (this.wantsPlay) {
        requestAnimationFrame(step);
      } else {
        this.ticking = false;
      }
    };
    requestAnimationFrame(step);
  };

  ChainPlayer.prototype.announce = function () {
    this.root.dataset.segment = String(this.index);
    this.ticks.forEach((tick, n) => tick.classList.toggle("is-current", n === this.index));
    this.root.dispatchEvent(new CustomEvent("chain:segment", { detail: { index: this.index } }));
  };

  ChainPlayer.prototype.render = function () {
    const now = this.currentTime();
    if (this.clock) this.clock.textContent = clockText(now);
    if (this.scrubber && !this.scrubbing) this.scrubber.value = now.toFixed(2);
    if (this.button) {
      this.button.textContent = this.wantsPlay ? "Pause" : "Play";
      this.button.setAttribute("aria-label", this.wantsPlay ? "Pause" : "Play");
    }
    this.root.dataset.state = this.wantsPlay ? "playing" : "paused";
  };

  ChainPlayer.prototype.bind = function () {
    if (this.button) {
      this.button.addEventListener("click", () => (this.wantsPlay ? this.pause() : this.play()));
    }
    this.screens.forEach((video, n) => {
      video.addEventListener("ended", () => {
        if (n === this.active && this.wantsPlay) this.advance();
      });
      video.addEventListener("click", () => (this.wantsPlay ? this.pause() : this.play()));
    });
    if (this.scrubber) {
      this.scrubber.addEventListener("input", () => {
        this.scrubbing = true;
        if (this.clock) this.clock.textContent = clockText(parseFloat(this.scrubber.value));
      });
      this.scrubber.addEventListener("change", () => {
        this.scrubbing = false;
        this.seek(parseFloat(this.scrubber.value));
      });
    }
  };

  // --- players by selector: the chain player, or a plain <video> on a clip page ---------------

  function playerFor(selector) {
    const element = selector ? document.querySelector(selector) : null;
    if (!element) return null;
    if (element.chainPlayer) return element.chainPlayer;
    if (element.tagName === "VIDEO") {
      return {
        currentTime: () => element.currentTime,
        seek: (t) => {
          element.currentTime = t;
          return Promise.resolve();
        },
        pause: () => element.pause(),
        play: () => element.play().catch(() => {}),
        element: element,
      };
    }
    return null;
  }

  function playerOf(node) {
    const section = node.closest("[data-player]");
    return section ? playerFor(section.dataset.player) : null;
  }

  function fillTimecode(form, player, force) {
    const input = form.querySelector("input[name=timecode]");
    if (!input || !player) return;
    if (force || input.value === "") input.value = player.currentTime().toFixed(1);
  }

  document.addEventListener("focusin", (event) => {
    const body = event.target.closest(".comment-form textarea[name=body]");
    if (!body) return;
    const player = playerOf(body);
    if (!player) return;
    // Writing a note pauses the picture on the moment it is about.
    player.pause();
    fillTimecode(body.form, player, false);
  });

  document.addEventListener("click", (event) => {
    const now = event.target.closest("[data-timecode-now]");
    if (now) {
      fillTimecode(now.form, playerOf(now), true);
      return;
    }
    const link = event.target.closest("[data-seek]");
    if (!link) return;
    const player = playerOf(link) || playerFor("#chain-player");
    if (!player) return;
    event.preventDefault();
    const where = document.querySelector(
      link.closest("[data-player]") ? link.closest("[data-player]").dataset.player : "#chain-player"
    );
    player.seek(parseFloat(link.dataset.seek));
    if (where && where.getBoundingClientRect().top < 0) where.scrollIntoView({ behavior: "smooth" });
  });

  function showNowButtons() {
    document.querySelectorAll("[data-timecode-now]").forEach((button) => {
      const player = playerOf(button);
      button.hidden = !player;
      if (player) button.textContent = "Use " + clockText(player.currentTime());
    });
  }

  function start() {
    const root = document.getElementById("chain-player");
    const data = document.getElementById("chain-segments");
    if (root && data && !root.chainPlayer) {
      const segments = JSON.parse(data.textContent);
      if (segments.length) root.chainPlayer = new ChainPlayer(root, segments);
      const wanted = /#t=([\d.]+)/.exec(window.location.hash);
      if (wanted && root.chainPlayer) root.chainPlayer.seek(parseFloat(wanted[1]));
    }
    showNowButtons();
    window.setInterval(showNowButtons, 250);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// Trimming on the chain page: each part of the trim strip is all of one segment's new
// footage, with a handle at its in point and one at its out point. Dragging a handle (or
// moving it with the arrow keys) fills in that segment's In/Out fields, which are the form
// that works without JavaScript; letting go saves it, and the page comes back with the
// chain playing only what is kept.
(function () {
  "use strict";

  const SNAP = 0.05; // seconds; the studio then moves the cut onto the nearest frame
  const SHORTEST = 0.5; // seconds a part keeps at least

  function seconds(value) {
    return value.toFixed(2) + " s";
  }

  function TrimPart(part) {
    this.part = part;
    this.footage = parseFloat(part.dataset.footage) || 0;
    this.form = document.getElementById("trim-" + part.dataset.trimPart);
    this.kept = part.querySelector(".trim-kept");
    this.handles = {
      in: part.querySelector("[data-handle=in]"),
      out: part.querySelector("[data-handle=out]"),
    };
    this.inputs = {
      in: this.form.querySelector("input[name=trim_in]"),
      out: this.form.querySelector("input[name=trim_out]"),
    };
    this.cut = {
      in: parseFloat(part.dataset.in) || 0,
      out: part.dataset.out ? parseFloat(part.dataset.out) : this.footage,
    };
    this.dragging = null;
    Object.keys(this.handles).forEach((which) => this.bind(which));
    Object.keys(this.inputs).forEach((which) => {
      this.inputs[which].addEventListener("input", () => {
        const value = parseFloat(this.inputs[which].value);
        if (Number.isFinite(value)) this.set(which, value, { typed: true });
      });
    });
    this.draw();
  }

  TrimPart.prototype.set = function (which, value, options) {
    let v = options && options.typed ? value : Math.round(value / SNAP) * SNAP;
    if (which === "in") v = Math.max(0, Math.min(v, this.cut.out - SHORTEST));
    else v = Math.min(this.footage, Math.max(v, this.cut.in + SHORTEST));
    this.cut[which] = v;
    if (!(options && options.typed)) this.inputs[which].value = v.toFixed(2);
    this.draw();
  };

  TrimPart.prototype.draw = function () {
    const from = (this.cut.in / this.footage) * 100;
    const to = (this.cut.out / this.footage) * 100;
    this.kept.style.left = from + "%";
    this.kept.style.width = Math.max(0, to - from) + "%";
    this.handles.in.style.left = from + "%";
    this.handles.out.style.left = to + "%";
    ["in", "out"].forEach((which) => {
      this.handles[which].setAttribute("aria-valuenow", this.cut[which].toFixed(2));
      this.handles[which].setAttribute("aria-valuetext", seconds(this.cut[which]));
      this.handles[which].title = (which === "in" ? "Starts at " : "Ends at ") + seconds(this.cut[which]);
    });
    const trimmed = this.cut.in > 0.001 || this.cut.out < this.footage - 0.001;
    this.part.classList.toggle("is-trimmed", trimmed);
  };

  TrimPart.prototype.secondsAt = function (event) {
    const box = this.part.getBoundingClientRect();
    return ((event.clientX - box.left) / box.width) * this.footage;
  };

  TrimPart.prototype.save = function () {
    const form = this.form;
    this.part.classList.add("is-saving");
    // Posted in the background so the page comes back where it was, on the player.
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then((response) => {
        if (response.ok) window.location.reload();
        else form.submit(); // the refusal, with its reason by the fields
      })
      .catch(() => form.submit());
  };

  TrimPart.prototype.bind = function (which) {
    const handle = this.handles[which];
    handle.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      handle.setPointerCapture(event.pointerId);
      this.dragging = which;
      this.part.classList.add("is-dragging");
    });
    handle.addEventListener("pointermove", (event) => {
      if (this.dragging === which) this.set(which, this.secondsAt(event));
    });
    const end = (event) => {
      if (this.dragging !== which) return;
      this.dragging = null;
      this.part.classList.remove("is-dragging");
      if (handle.hasPointerCapture(event.pointerId)) handle.releasePointerCapture(event.pointerId);
      this.save();
    };
    handle.addEventListener("pointerup", end);
    handle.addEventListener("pointercancel", end);
    handle.addEventListener("keydown", (event) => {
      const step = event.shiftKey ? 1 : 0.1;
      if (event.key === "ArrowLeft" || event.key === "ArrowDown") {
        this.set(which, this.cut[which] - step);
      } else if (event.key === "ArrowRight" || event.key === "ArrowUp") {
        this.set(which, this.cut[which] + step);
      } else if (event.key === "Enter") {
        this.save();
      } else {
        return;
      }
      event.preventDefault();
    });
  };

  function start() {
    const strip = document.querySelector("[data-trim-strip]");
    if (!strip) return;
    strip.querySelectorAll("[data-trim-part]").forEach((part) => {
      if (document.getElementById("trim-" + part.dataset.trimPart)) part.trimPart = new TrimPart(part);
    });
    strip.hidden = false;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
