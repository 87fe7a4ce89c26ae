package com.s3bguploader

import android.app.ActivityManager
import com.facebook.react.bridge.Promise
import com.facebook.react.bridge.ReactApplicationContext
import com.facebook.react.bridge.ReadableMap
import com.facebook.react.module.annotations.ReactModule
import com.s3bguploader.core.JsEventObserver
import com.s3bguploader.core.JsException
import com.s3bguploader.core.UploaderException
import com.s3bguploader.core.Subscription
import com.s3bguploader.core.UploadEngine
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * The TurboModule: a thin adapter from the codegen spec to the engine's JSON
 * calls. Every call runs off React Native's threads and settles its promise
 * exactly once; failures reject with the engine's stable code.
 */
@ReactModule(name = NativeS3BgUploaderSpec.NAME)
class S3BgUploaderModule(context: ReactApplicationContext) : NativeS3BgUploaderSpec(context) {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val engine: UploadEngine by lazy { S3BgUploaderRuntime.engine(reactApplicationContext) }
    @Volatile private var subscription: Subscription? = null

    /** Where events go: the spec's emitters (tests record them instead). */
    @Volatile internal var eventSink: (String, ReadableMap) -> Unit = { name, map ->
        when (name) {
            "onProgress" -> emitOnProgress(map)
            "onStateChange" -> emitOnStateChange(map)
        }
    }

    /** Tells whether the app is in the foreground (user-initiated jobs need it). */
    @Volatile internal var appVisible: () -> Boolean = {
        val info = ActivityManager.RunningAppProcessInfo()
        ActivityManager.getMyMemoryState(info)
        info.importance <= ActivityManager.RunningAppProcessInfo.IMPORTANCE_FOREGROUND
    }

    override fun initialize() {
        super.initialize()
        // Events flow while the module lives; after a reload JS asks
        // getUploads for the current state.
        subscription = engine.subscribeJson(object : JsEventObserver {
            override fun onEvent(name: String, json: String) {
                try {
                    eventSink(name, JsonBridge.toMap(json))
                } catch (e: Exception) {
                    // No listener yet, or the instance is going away.
                }
            }
        })
        // Work left from an earlier run continues in a job.
        scope.launch { runCatching { UploadJobs.schedule(reactApplicationContext, engine, userAction = false, visible = false) } }
    }

    override fun invalidate() {
        subscription?.close()
        subscription = null
        scope.cancel()
        super.invalidate()
    }

    private fun settle(promise: Promise, block: suspend () -> Any?) {
        scope.launch {
            try {
                promise.resolve(block())
            } catch (e: JsException.Rejected) {
                promise.reject(e.code, e.detail)
            } catch (e: UploaderException) {
                // Outside the JSON calls: the engine's code all the same.
                promise.reject(e.errorCode(), e.errorDetail())
            } catch (e: Throwable) {
                promise.reject("internal", "the native module failed: ${e.javaClass.simpleName}")
            }
        }
    }

    /** A user action that may add work: run it in a job (user-initiated while visible). */
    private suspend fun scheduleWork() {
        runCatching { UploadJobs.schedule(reactApplicationContext, engine, userAction = true, visible = appVisible()) }
    }

    override fun setConfig(configJson: String, promise: Promise) = settle(promise) {
        engine.setConfigJson(configJson)
        null
    }

    override fun uploadFile(path: String, transferId: String, fileName: String?, userParamsJson: String, promise: Promise) =
        settle(promise) {
            if (path.startsWith("content:")) {
                ContentFileOpener.takePersistablePermission(reactApplicationContext.contentResolver, path)
            }
            val upload = JsonBridge.toMap(engine.uploadFileJson(path, transferId, fileName, userParamsJson))
            scheduleWork()
            upload
        }

    override fun pause(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) {
        JsonBridge.toArray(engine.pauseJson(uploadId, transferId))
    }

    override fun resume(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) {
        val changed = JsonBridge.toArray(engine.resumeJson(uploadId, transferId))
        scheduleWork()
        changed
    }

    override fun cancel(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) {
        JsonBridge.toArray(engine.cancelJson(uploadId, transferId))
    }

    override fun forget(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) {
        engine.forgetJson(uploadId, transferId)
    }

    override fun getUploads(uploadId: Double?, transferId: String?, promise: Promise) = settle(promise) {
        JsonBridge.toArray(engine.uploadsJson(uploadId, transferId))
    }

    override fun getSummary(transferId: String?, promise: Promise) = settle(promise) {
        JsonBridge.toMap(engine.summaryJson(transferId))
    }

    // lead: replace with the set-aside of a queue that could not be opened (the spec's contract).
    override fun setAsideQueue(promise: Promise) {
        promise.reject("internal", "setAsideQueue is not implemented on Android yet")
    }
}
