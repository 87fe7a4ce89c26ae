package com.s3bguploader.test

import android.app.Application
import com.facebook.react.bridge.BaseJavaModule
import com.facebook.react.bridge.CxxCallbackImpl
import com.facebook.react.bridge.ReadableMap
import com.s3bguploader.S3BgUploaderModule
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.util.ReflectionHelpers
import java.util.Collections

/**
 * fbjni's base class loads its native library when first used; on the JVM
 * there is none, and nothing here calls into it.
 */
@Implements(className = "com.facebook.jni.HybridData", isInAndroidSdk = false)
class NoNativeHybridData {
    companion object {
        @JvmStatic
        @Implementation
        @Suppress("FunctionName")
        fun __staticInitializer__() = Unit
    }
}

/**
 * The callback React Native's C++ side installs for a TurboModule's events
 * (`setEventEmitterCallback`): on a device it hands the event to JavaScript;
 * here it records what the codegen emitters pass it.
 */
@Implements(value = CxxCallbackImpl::class, isInAndroidSdk = false)
class RecordingEmitterCallback {
    companion object {
        val events: MutableList<Pair<String, ReadableMap>> = Collections.synchronizedList(ArrayList())
    }

    @Implementation
    fun invoke(vararg args: Any?) {
        events.add(args[0] as String to args[1] as ReadableMap)
    }
}

/** Events leave through the spec's generated emitters (`emitOnProgress`, `emitOnStateChange`), not a test seam. */
@RunWith(RobolectricTestRunner::class)
// The bridge and fbjni are instrumented for every class (robolectric.properties).
@Config(shadows = [NoNativeHybridData::class, RecordingEmitterCallback::class, TestJobScheduler::class])
class EmitterTest {
    private lateinit var app: Application
    private lateinit var module: S3BgUploaderModule

    @Before
    fun setUp() {
        TestSetup.before()
        RecordingEmitterCallback.events.clear()
        app = RuntimeEnvironment.getApplication()
        Screen.show()
        module = S3BgUploaderModule(TestReactContext(app))
        // What React Native's TurboModule manager does for a module with events.
        val callback = ReflectionHelpers.callConstructor(CxxCallbackImpl::class.java)
        val install = BaseJavaModule::class.java.getDeclaredMethod("setEventEmitterCallback", CxxCallbackImpl::class.java)
        install.isAccessible = true
        install.invoke(module, callback)
        module.initialize()
    }

    @After
    fun tearDown() {
        module.invalidate()
        TestSetup.after()
    }

    @Test
    fun progressAndStateChangesGoThroughTheGeneratedEmitters() {
        assertEquals(null, TestPromise().also { module.setConfig(Backend.configJson(), it) }.resolved())
        val f = randomFile(app.cacheDir, "emit.bin", 6 * MIB)
        val id = (TestPromise().also { module.uploadFile(f.path, "emit", null, "{}", it) }.resolved() as ReadableMap).num("id")
        val seen = eventually("the COMPLETED event") {
            synchronized(RecordingEmitterCallback.events) { RecordingEmitterCallback.events.toList() }.takeIf { list ->
                list.any { it.first == "onStateChange" && it.second.num("id") == id && it.second.str("state") == "COMPLETED" }
            }
        }
        assertTrue(seen.all { it.first == "onStateChange" || it.first == "onProgress" })
        assertTrue(seen.filter { it.first == "onStateChange" }.all { it.second.keys() == NATIVE_UPLOAD_KEYS })
        val progress = seen.filter { it.first == "onProgress" }.map { it.second }
        assertTrue("no progress event", progress.isNotEmpty())
        assertTrue(progress.all { it.keys() == NATIVE_PROGRESS_KEYS })
        assertTrue(progress.all { it.num("id") == id && it.num("uploadedBytes") <= f.length().toDouble() })
    }
}
