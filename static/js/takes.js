// Takes side by side: every take plays the same moment, from one Play button and one
// scrubber, each with its own sound switch. Plain JavaScript, no build step.
//
// The longest take is the clock. While playing, any take that drifts more than a few
// frames from it is put back on its time (decoders run at slightly different speeds, and
// one may stall to buffer). A take shorter than the clock stops at its end and waits.
// Without JavaScript each player keeps its own controls, and "Pick this take" is a form.
(function () {
  "use strict";

  const DRIFT = 0.12; // seconds a take may be off the clock before it is put back

  function clockText(seconds) {
    const s = Math.max(0, seconds || 0);
    const minutes = Math.floor(s / 60);
    const rest = s - minutes * 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest.toFixed(1);
  }

  function lengthOf(video) {
    return Number.isFinite(video.duration) ? video.duration : 0;
  }

  function TakesPlayer(grid, transport) {
    this.grid = grid;
    this.transport = transport;
    this.videos = Array.from(grid.querySelectorAll("video.take-video"));
    this.button = transport.querySelector("[data-takes=play]");
    this.scrubber = transport.querySelector(".scrubber");
    this.clock = transport.querySelector("[data-takes-clock]");
    this.totalText = transport.querySelector("[data-takes-total]");
    this.playing = false;
    this.scrubbing = false;
    this.position = 0;
    this.videos.forEach((video, n) => {
      // One transport for all: the players' own controls would let one take run alone.
      video.controls = false;
      video.muted = n !== 0;
      video.addEventListener("loadedmetadata", () => this.render());
      video.addEventListener("click", () => this.toggle());
    });
    this.grid.querySelectorAll("[data-sound]").forEach((button) => {
      const video = button.closest(".take-card").querySelector("video.take-video");
      button.hidden = false;
      button.addEventListener("click", () => {
        video.muted = !video.muted;
        this.render();
      });
    });
    this.onPlay = () => this.toggle();
    this.onScrub = () => {
      this.scrubbing = true;
      this.clock.textContent = clockText(parseFloat(this.scrubber.value));
    };
    this.onSeek = () => {
      this.scrubbing = false;
      this.seek(parseFloat(this.scrubber.value));
    };
    this.button.addEventListener("click", this.onPlay);
    this.scrubber.addEventListener("input", this.onScrub);
    this.scrubber.addEventListener("change", this.onSeek);
    transport.hidden = false;
    this.render();
  }

  TakesPlayer.prototype.total = function () {
    return Math.max(0, ...this.videos.map(lengthOf));
  };

  // The clock: the longest take that is loaded.
  TakesPlayer.prototype.master = function () {
    return this.videos.reduce((best, video) => (lengthOf(video) > lengthOf(best) ? video : best));
  };

  TakesPlayer.prototype.currentTime = function () {
    return this.playing ? this.master().currentTime : this.position;
  };

  TakesPlayer.prototype.positions = function () {
    return this.videos.map((video) => video.currentTime);
  };

  TakesPlayer.prototype.play = function () {
    if (this.currentTime() >= this.total() - 0.05) this.seek(0);
    this.playing = true;
    const at = this.position;
    this.videos.forEach((video) => {
      if (at < lengthOf(video) - 0.05) video.play().catch(() => {});
    });
    this.tick();
    this.render();
  };

  TakesPlayer.prototype.pause = function () {
    this.position = this.master().currentTime;
    this.playing = false;
    this.videos.forEach((video) => video.pause());
    // Paused, every take shows the very same moment.
    this.videos.forEach((video) => this.place(video, this.position));
    this.render();
  };

  TakesPlayer.prototype.toggle = function () {
    if (this.playing) this.pause();
    else this.play();
  };

  TakesPlayer.prototype.place = function (video, time) {
    const length = lengthOf(video);
    video.currentTime = length ? Math.min(time, Math.max(0, length - 0.04)) : time;
  };

  TakesPlayer.prototype.seek = function (time) {
    const t = Math.max(0, Math.min(time, this.total()));
    this.position = t;
    this.videos.forEach((video) => {
      this.place(video, t);
      if (this.playing && t < lengthOf(video) - 0.05) video.play().catch(() => {});
    });
    this.render();
  };

  TakesPlayer.prototype.tick = function () {
    if (this.ticking) return;
    this.ticking = true;
    const step = () => {
      if (!this.playing) {
        this.ticking = false;
        return;
      }
      const master = this.master();
      const now = master.currentTime;
      this.videos.forEach((video) => {
        if (video === master) return;
        const length = lengthOf(video);
        if (now >= length - 0.05) return; // a shorter take has ended: it waits on its last frame
        if (video.paused && !master.paused) video.play().catch(() => {});
        if (Math.abs(video.currentTime - now) > DRIFT) video.currentTime = now;
      });
      if (master.ended || now >= this.total() - 0.02) {
        this.position = this.total();
        this.playing = false;
        this.videos.forEach((video) => video.pause());
      }
      this.render();
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  };

  TakesPlayer.prototype.render = function () {
    const now = this.currentTime();
    const total = this.total();
    this.scrubber.max = total.toFixed(2);
    if (!this.scrubbing) {
      this.scrubber.value = now.toFixed(2);
      this.clock.textContent = clockText(now);
    }
    this.totalText.textContent = clockText(total);
    this.button.textContent = this.playing ? "Pause all" : "Play all";
    this.button.setAttribute("aria-label", this.playing ? "Pause all takes" : "Play all takes");
    this.grid.dataset.state = this.playing ? "playing" : "paused";
    this.grid.querySelectorAll("[data-sound]").forEach((button) => {
      const video = button.closest(".take-card").querySelector("video.take-video");
      button.textContent = video.muted ? "Sound off" : "Sound on";
      button.setAttribute("aria-pressed", video.muted ? "false" : "true");
    });
  };

  TakesPlayer.prototype.stop = function () {
    this.playing = false;
    this.videos.forEach((video) => video.pause());
    this.button.removeEventListener("click", this.onPlay);
    this.scrubber.removeEventListener("input", this.onScrub);
    this.scrubber.removeEventListener("change", this.onSeek);
  };

  function start() {
    const grid = document.getElementById("takes-grid");
    const transport = document.getElementById("takes-transport");
    if (!grid || !transport) return;
    if (transport.takesPlayer) transport.takesPlayer.stop();
    transport.takesPlayer = null;
    grid.takesPlayer = null;
    if (grid.querySelectorAll("video.take-video").length < 2) {
      transport.hidden = true;
      return;
    }
    const player = new TakesPlayer(grid, transport);
    transport.takesPlayer = player;
    grid.takesPlayer = player;
  }

  // The grid is redrawn (htmx) while takes are still being made: start again on the new one.
  document.addEventListener("htmx:afterSettle", () => {
    const grid = document.getElementById("takes-grid");
    const transport = document.getElementById("takes-transport");
    if (grid && transport && !grid.takesPlayer) start();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
