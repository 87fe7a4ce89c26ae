package com.s3bguploader

import android.app.Activity
import android.app.ActivityManager
import android.app.Application
import android.os.Bundle

/**
 * Whether the app has a started activity, from the application's own
 * activity callbacks (no binder call per question, no androidx): the app
 * state the engine is told, and the visibility a user-initiated job needs
 * when it is scheduled. An activity stopped for a configuration change
 * (a rotation) is about to be replaced, so it does not count as leaving.
 * Callbacks arrive on the main thread; [visible] may be read anywhere.
 */
internal class AppVisibility(
    initiallyVisible: Boolean,
    private val onChange: (Boolean) -> Unit,
) : Application.ActivityLifecycleCallbacks {
    // Main thread only. An activity started before the callbacks were
    // registered is not counted: its stop clamps at zero and reports
    // leaving, so the engine is never left in the foreground by a miscount.
    private var started = 0

    @Volatile var visible: Boolean = initiallyVisible
        private set

    override fun onActivityStarted(activity: Activity) {
        started++
        set(true)
    }

    override fun onActivityStopped(activity: Activity) {
        started = (started - 1).coerceAtLeast(0)
        if (started == 0 && !activity.isChangingConfigurations) set(false)
    }

    private fun set(now: Boolean) {
        if (now == visible) return
        visible = now
        onChange(now)
    }

    override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
    override fun onActivityResumed(activity: Activity) = Unit
    override fun onActivityPaused(activity: Activity) = Unit
    override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit
    override fun onActivityDestroyed(activity: Activity) = Unit

    companion object {
        /** A first answer before any callback: whether this process shows an activity now. */
        fun guess(): Boolean = try {
            val info = ActivityManager.RunningAppProcessInfo()
            ActivityManager.getMyMemoryState(info)
            info.importance <= ActivityManager.RunningAppProcessInfo.IMPORTANCE_FOREGROUND
        } catch (e: RuntimeException) {
            false
        }
    }
}
