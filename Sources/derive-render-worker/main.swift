import RenderWorkers

// A render worker: renders requests from its parent (derive) over fd 3, one at a time.
RenderWorkerMain.run()
